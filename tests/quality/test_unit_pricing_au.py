"""Pack sizes and unit prices on the real au-grocery-2023 catalogues: how many sizes read, and why not."""

import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from catalogue.domain.unit_pricing import alternative_views, parse_pack_size, size_problem
from scraper.domain.importers import read_rows

pytestmark = pytest.mark.quality

ROOT = Path(__file__).resolve().parents[2]
AU = ROOT.parent / "shared" / "data" / "au-grocery-2023"
CHAINS = ("aldi", "coles", "iga", "woolworths")


@pytest.mark.skipif(not AU.is_dir(), reason="the real au-grocery-2023 catalogues are not beside the project")
def test_real_sizes_read_and_agree_with_the_files_own_unit_prices() -> None:
    read, rows, unread, agree, compared = Counter[str](), Counter[str](), Counter[str](), 0, 0
    for chain in CHAINS:
        data = (AU / f"{chain}.json").read_bytes()
        stated = json.loads(data)["productInfo"]
        for row in read_rows(f"{chain}.json", data):
            rows[chain] += 1
            size, name = row.get("size"), row.get("name")
            pack = parse_pack_size(size, name)
            if pack is None:
                problem = size_problem(size, name) or ""
                # Group the reasons by their shape, not by each size's digits.
                unread[f"{chain}: {re.sub(r'[0-9.]+', 'N', problem)}"] += 1
                continue
            read[chain] += 1
            item = stated[row["item"] - 1]
            # The files' unitPrice is dollars per kilogram or litre (price over quantity).
            views = alternative_views(int(Decimal(str(item["price"])) * 100), pack)
            if views and isinstance(item.get("unitPrice"), int | float) and not pack.approximate:
                compared += 1
                agree += abs(views[0].exact - float(item["unitPrice"]) * 100) <= max(
                    1.0, 0.01 * views[0].exact
                )
    total = sum(read.values()) + sum(unread.values())
    print(f"\nsizes read: {sum(read.values())}/{total} ({sum(read.values()) / total:.1%})")
    for chain in CHAINS:
        print(f"  {chain}: {read[chain]}/{rows[chain]} read")
    print("not read:")
    for reason, count in unread.most_common(12):
        print(f"  {count:6d}  {reason}")
    print(f"per kg / per L agreeing with the files' unitPrice: {agree}/{compared} ({agree / compared:.1%})")
    # Coles and ALDI state units in their urls; Woolworths' and IGA's files hold bare numbers.
    assert read["coles"] / rows["coles"] >= 0.99
    assert agree / compared >= 0.97
    assert all("has no unit" in reason for reason, count in unread.items() if count > 20)
