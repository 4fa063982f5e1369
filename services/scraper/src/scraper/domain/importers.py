"""Read the price files users bring into raw rows: pure parsing of bytes, no IO.

A raw row is a dict with any of the keys in RAW_KEYS, holding values as the source wrote
them (possibly of the wrong type: `ingest.validate_row` judges them). Rows also say where
they came from: `line` (1-based) in line-based files, `item` (1-based position in the
product list) in JSON documents. A row the reader could not make sense of carries an
`_error` text instead, plus the source as `text` or `cells`, so it can be quarantined
while the rest of the file goes on. Errors that spoil the whole file raise ValueError.
"""

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

from scraper.domain.units import KNOWN_UNITS

RawRow = dict[str, Any]
"""One row as read from a file, before validation."""

Format = Literal["jsonl", "csv", "grocermatic", "heissepreise"]
"""A file format the importers read."""

RAW_KEYS: frozenset[str] = frozenset(
    {
        "chain",
        "store_id",
        "sku",
        "name",
        "brand",
        "size",
        "category",
        "barcode",
        "url",
        "unit",
        "quantity",
        "price",
        "price_cents",
        "was_price",
        "was_price_cents",
        "observed_at",
        "available",
        "unit_price",
        "multibuy",
        "member_price",
        "member_price_cents",
        "sold_by",
    }
)

_BOM = b"\xef\xbb\xbf"
_SUPPORTED = (
    "supported formats: jsonl (.jsonl, .ndjson, or .json with one object per line), "
    "csv (.csv with a header), grocermatic (.json with a 'productInfo' list), "
    "heissepreise (.json holding a list of products)"
)

# The shop's product number ends the url, after a dash or a slash (coles `…-3804387`,
# woolworths `…/productdetails/94706`). Aldi's urls end in a slash and their slugs can
# end in a small disambiguating number (`…-250g-2/`), which is not a product number.
_TRAILING_ID = re.compile(r"(?:^|-)([0-9]+)$")

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_UNIT = "|".join(re.escape(unit) for unit in sorted(KNOWN_UNITS, key=len, reverse=True))
_AMOUNT = rf"{_NUMBER}(?:x{_NUMBER})?-?(?:{_UNIT})(?=-|$)"
# A size as a url slug spells it: `1l`, `1.12-kg`, `18-pack`, `6x200ml-6-pack`, `approx.-125g`.
_SLUG_SIZE = re.compile(rf"(?:approx\.?-?)?{_AMOUNT}(?:-{_AMOUNT})*")
_NOT_ALNUM = re.compile(r"[\W_]+")


def detect_format(filename: str, data: bytes) -> Format:
    """Tell a file's format from its extension, or from its content where that is ambiguous."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension in ("jsonl", "ndjson"):
        return "jsonl"
    if extension == "csv":
        return "csv"
    sniffed = _sniff_json(data)
    if sniffed is None:
        raise ValueError(f"cannot tell the format of {filename!r}; {_SUPPORTED}")
    return sniffed


def read_rows(filename: str, data: bytes, *, fmt: str | None = None) -> Iterator[RawRow]:
    """Read a file's rows in the given format, or in the one detect_format finds."""
    reader = _READERS.get(fmt if fmt is not None else detect_format(filename, data))
    if reader is None:
        raise ValueError(f"unknown format {fmt!r}; {_SUPPORTED}")
    return reader(data)


def read_jsonl(data: bytes) -> Iterator[RawRow]:
    """Read JSON lines: one object per line, a bad line becomes an error row."""
    for number, line in enumerate(data.removeprefix(_BOM).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield _error_row("line", number, "is not UTF-8 text", text=line.decode("utf-8", "replace"))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            problem = f"is not JSON: {error.msg} at column {error.colno}"
            yield _error_row("line", number, problem, text=text)
            continue
        if isinstance(value, dict):
            yield {**value, "line": number}
        else:
            yield _error_row("line", number, "is not a JSON object", text=text)


def read_csv(data: bytes) -> Iterator[RawRow]:
    """Read a CSV file whose header names raw row keys; empty cells are left out."""
    reader = csv.reader(io.StringIO(_decode(data)))
    try:
        header = next((cells for cells in reader if any(cell.strip() for cell in cells)), None)
    except csv.Error as error:
        raise ValueError(f"the CSV header is unreadable: {error}") from None
    if header is None:
        return iter(())
    columns = [cell.strip().lower() for cell in header]
    duplicates = sorted({column for column in columns if columns.count(column) > 1})
    if duplicates:
        raise ValueError(f"the CSV header repeats {', '.join(duplicates)}")
    if RAW_KEYS.isdisjoint(columns):
        known = ", ".join(sorted(RAW_KEYS))
        raise ValueError(f"the CSV header names none of the known columns ({known})")

    def records() -> Iterator[RawRow]:
        """Turn the records after the header into rows numbered by the line they start on."""
        # The reader counts physical lines, and a record with a quoted newline spans several.
        next_line = reader.line_num + 1
        try:
            for cells in reader:
                line, next_line = next_line, reader.line_num + 1
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(columns):
                    problem = f"has {len(cells)} cells, the header has {len(columns)}"
                    yield _error_row("line", line, problem, cells=cells)
                    continue
                stripped = (cell.strip() for cell in cells)
                row = {column: cell for column, cell in zip(columns, stripped, strict=True) if cell}
                yield {**row, "line": line}
        except csv.Error as error:
            raise ValueError(f"the CSV file is unreadable from line {next_line}: {error}") from None

    return records()


def read_grocermatic(data: bytes) -> Iterator[RawRow]:
    """Read a Grocermatic scrape: a JSON object whose `productInfo` lists the products."""
    document = _load_json(data)
    products = document.get("productInfo") if isinstance(document, dict) else None
    if not isinstance(products, list):
        raise ValueError("not a Grocermatic file: expected a JSON object with a 'productInfo' list")
    return (_grocermatic_row(item, product) for item, product in enumerate(products, start=1))


def read_heissepreise(data: bytes) -> Iterator[RawRow]:
    """Read heissepreise's canonical JSON: a list of products with their price history."""
    document = _load_json(data)
    if not isinstance(document, list):
        raise ValueError("not a heissepreise file: expected a JSON list of products")
    return (_heissepreise_row(item, product) for item, product in enumerate(document, start=1))


_READERS: dict[str, Callable[[bytes], Iterator[RawRow]]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "grocermatic": read_grocermatic,
    "heissepreise": read_heissepreise,
}


def _sniff_json(data: bytes) -> Format | None:
    """Tell which JSON format a file holds from its first bytes, or None if none fits."""
    head = data.removeprefix(_BOM).lstrip()
    if head.startswith(b"["):
        return "heissepreise"
    if not head.startswith(b"{"):
        return None
    try:
        first = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        # The first line is not a whole object: one document spread over many lines.
        first = None
    if isinstance(first, dict):
        return "grocermatic" if "productInfo" in first else "jsonl"
    return "grocermatic" if b'"productInfo"' in head else None


def _decode(data: bytes) -> str:
    """Decode a whole file as UTF-8, dropping a byte order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not UTF-8 text (byte {error.start})") from None


def _load_json(data: bytes) -> Any:
    """Parse a whole file as one JSON document."""
    try:
        return json.loads(_decode(data))
    except json.JSONDecodeError as error:
        raise ValueError(f"the file is not JSON: {error.msg} at line {error.lineno}") from None


def _error_row(where: str, number: int, problem: str, **source: object) -> RawRow:
    """Make the row that stands for a piece of the file that could not be read."""
    return {where: number, "_error": f"{where} {number} {problem}", **source}


def _grocermatic_row(item: int, product: object) -> RawRow:
    """Map one Grocermatic product; sku, brand and size come from its url, else size from its quantity."""
    if not isinstance(product, dict):
        return _error_row("item", item, "is not an object", value=product)
    row: RawRow = {key: product[key] for key in ("name", "url", "price", "quantity") if key in product}
    row["item"] = item
    url, name = product.get("url"), product.get("name")
    if isinstance(url, str):
        sku, slug = _sku_and_slug(url)
        if sku:
            row["sku"] = sku
        if slug and isinstance(name, str):
            brand, size = _brand_and_size(slug, name)
            if brand:
                row["brand"] = brand
            if size:
                row["size"] = size
    quantity = product.get("quantity")
    if (
        "size" not in row
        and isinstance(quantity, int | float)
        and not isinstance(quantity, bool)
        and quantity > 0
    ):
        # Grocermatic's own quantity, without its unit: kilograms, litres or a count.
        row["size"] = _number_text(quantity)
    return row


def _sku_and_slug(url: str) -> tuple[str | None, str]:
    """Split a product url's last segment into the shop's product id and the name slug."""
    # Only `/` splits: these scrapers leave `#`, `%` and `?` from product names unescaped.
    path = url.partition("://")[2].partition("/")[2] if "://" in url else url
    segment = path.rstrip("/").rpartition("/")[2]
    match = None if url.endswith("/") else _TRAILING_ID.search(segment)
    if match is None:
        return segment or None, segment
    return match.group(1), segment[: match.start()]


def _brand_and_size(slug: str, name: str) -> tuple[str | None, str | None]:
    """Find the product name inside a url slug; the words before it are the brand, after it the size."""
    segments = slug.split("-")
    keys = [_squash(segment) for segment in segments]
    target = _squash(name)
    if not target:
        return None, None
    for start, key in enumerate(keys):
        # Compare letters and digits only: slugs drop or keep `'`, `&`, `.` as they please.
        if not key or not target.startswith(key):
            continue
        joined = ""
        for end in range(start, len(keys)):
            joined += keys[end]
            if joined == target:
                return _brand(segments[:start]), _slug_size("-".join(segments[end + 1 :]))
            if not target.startswith(joined):
                break
    return None, None


def _brand(words: list[str]) -> str | None:
    """Title-case the slug words before the product name, if any name a brand."""
    words = [word for word in words if word]
    if not any(char.isalpha() for word in words for char in word):
        return None
    return " ".join(word.capitalize() for word in words)


def _slug_size(rest: str) -> str | None:
    """Read a size such as `18-pack` or `1.12-kg` from the slug after the product name."""
    match = _SLUG_SIZE.match(rest.lstrip("-"))
    return match.group(0).replace("-", " ") if match else None


def _squash(text: str) -> str:
    """Keep only the lower-cased letters and digits of text."""
    return _NOT_ALNUM.sub("", text.lower())


def _heissepreise_row(item: int, product: object) -> RawRow:
    """Map one heissepreise product; it was observed on its newest price history date."""
    if not isinstance(product, dict):
        return _error_row("item", item, "is not an object", value=product)
    row: RawRow = {"item": item}
    for source, key in (
        ("store", "chain"),
        ("id", "sku"),
        ("name", "name"),
        ("price", "price"),
        ("unit", "unit"),
        ("quantity", "quantity"),
        ("category", "category"),
        ("url", "url"),
    ):
        if product.get(source) is not None:
            row[key] = product[source]
    newest = _newest_date(product.get("priceHistory"))
    if newest is not None:
        row["observed_at"] = newest
    quantity, unit = row.get("quantity"), row.get("unit")
    if isinstance(quantity, int | float | str) and not isinstance(quantity, bool) and isinstance(unit, str):
        row["size"] = f"{_number_text(quantity)} {unit}"
    return row


def _newest_date(history: object) -> str | None:
    """Return the latest date of a price history, or None when it has none."""
    if not isinstance(history, list):
        return None
    dates = [
        entry["date"] for entry in history if isinstance(entry, dict) and isinstance(entry.get("date"), str)
    ]
    # ISO dates sort as text.
    return max(dates, default=None)


def _number_text(quantity: float | str) -> str:
    """Write a quantity without a pointless `.0`."""
    if isinstance(quantity, float) and quantity.is_integer():
        return str(int(quantity))
    return str(quantity)
