"""Load the category map at start: the operator's file (`SCRAPER_CATEGORY_MAP`) or the packaged one."""

from importlib.resources import files
from pathlib import Path

from scraper.domain.categories import CategoryMap, read_category_map

CATEGORY_MAP = Path(str(files("scraper") / "data" / "category_map.csv"))


def load_category_map(path: Path | None) -> CategoryMap:
    """Read the operator's category map, or the packaged one; a faulty map stops the start with its line."""
    source = path or CATEGORY_MAP
    try:
        return read_category_map(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"SCRAPER_CATEGORY_MAP: cannot read {source}: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"SCRAPER_CATEGORY_MAP: {source}: {error}") from None
