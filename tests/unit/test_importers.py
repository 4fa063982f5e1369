"""The importers: each file format read into raw rows, unreadable pieces kept as error rows."""

import json
from pathlib import Path
from typing import get_args

import pytest

from scraper.domain.importers import (
    Format,
    detect_format,
    read_csv,
    read_grocermatic,
    read_heissepreise,
    read_jsonl,
    read_rows,
)

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "au-grocery-2023"

GROCERMATIC_PRODUCTS: list[object] = [
    {
        "name": "Taco Shells Family Pack",
        "url": "https://www.coles.com.au/product/old-el-paso-taco-shells-family-pack-18-pack-3804387",
        "img": "https://productimages.coles.com.au/productimages/3/3804387.jpg",
        "price": 6,
        "quantity": 18,
        "unitPrice": 0.33,
    },
    {
        "name": "Essentials White Vinegar",
        "url": "https://www.woolworths.com.au/shop/productdetails/94706",
        "price": 1.7,
        "quantity": 2,
        "unitPrice": 0.85,
    },
    {
        "name": "Market Fare Broccoli",
        "url": "https://www.aldi.com.au/en/groceries/freezer/freezer-detail/ps/p/market-fare-broccoli-500g-1/",
        "price": 2.99,
        "quantity": 0.5,
    },
    {
        "name": "Community Co Fettuccine #12",
        "url": "https://www.igashop.com.au/product/community-co-fettuccine-#12-850730",
        "price": 1.2,
        "quantity": 0.5,
    },
    {
        "name": "Chicken Loaf",
        "url": "https://www.coles.com.au/product/thomson's-deli-chicken-loaf-approx.-100g-3950913",
        "price": 1.58,
        "quantity": 0.1,
    },
    {"name": "No url at all", "price": 1.0},
    "not a product",
]
GROCERMATIC = json.dumps({"productInfo": GROCERMATIC_PRODUCTS, "scrapeSecond": 697.5}, indent=2).encode()

HEISSEPREISE = json.dumps(
    [
        {
            "store": "billa",
            "id": "00-436117",
            "name": "Clever Haltbare Vollmilch",
            "price": 1.19,
            "priceHistory": [{"date": "2023-04-02", "price": 1.29}, {"date": "2023-05-01", "price": 1.19}],
            "isWeighted": False,
            "unit": "ml",
            "quantity": 1000.0,
            "bio": False,
            "url": "/produkte/clever-haltbare-vollmilch-00-436117",
        },
        {"store": "spar", "id": 5100, "name": "Bauernbrot", "price": 2.5, "unit": "g", "quantity": 750},
        42,
    ]
).encode()


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("prices.jsonl", b'{"sku": "1"}\n', "jsonl"),
        ("prices.NDJSON", b"", "jsonl"),
        ("prices.csv", b"sku,price\n1,2\n", "csv"),
        ("prices.json", b'{"sku": "1", "price_cents": 100}\n{"sku": "2"}\n', "jsonl"),
        ("export.txt", b'\xef\xbb\xbf{"sku": "1"}\n', "jsonl"),
        ("coles.json", GROCERMATIC, "grocermatic"),
        ("coles.json", json.dumps({"productInfo": []}).encode(), "grocermatic"),
        ("latest-canonical.json", b"  \n" + HEISSEPREISE, "heissepreise"),
    ],
)
def test_detect_format_reads_extension_then_content(filename: str, data: bytes, expected: str) -> None:
    assert detect_format(filename, data) == expected


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("prices.xlsx", b"PK\x03\x04"),
        ("prices.json", b'{\n  "products": []\n}'),
        ("prices.json", b""),
        ("prices", b"sku,price\n1,2\n"),
    ],
)
def test_detect_format_refuses_what_it_cannot_tell_naming_the_supported_formats(
    filename: str, data: bytes
) -> None:
    with pytest.raises(ValueError, match=f"cannot tell the format of '{filename}'") as raised:
        detect_format(filename, data)
    assert all(fmt in str(raised.value) for fmt in get_args(Format))


def test_read_rows_uses_the_given_format_over_the_file_name() -> None:
    rows = list(read_rows("upload.bin", b"sku,price\n7,1.50\n", fmt="csv"))
    assert rows == [{"sku": "7", "price": "1.50", "line": 2}]
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        read_rows("upload.bin", b"", fmt="xml")


def test_jsonl_keeps_each_object_with_its_line_and_turns_bad_lines_into_error_rows() -> None:
    data = (
        b'{"sku": "1", "price_cents": 435, "observed_at": "2023-05-01T10:00:00Z"}\n'
        b"\n"
        b"not json\n"
        b"[1, 2]\n"
        b'{"sku": "2", "price": "4.50", "line": 99}\r\n'
        b"\xff\xfe\n"
        b'{"sku": "3", "price": 1}'
    )
    assert list(read_jsonl(data)) == [
        {"sku": "1", "price_cents": 435, "observed_at": "2023-05-01T10:00:00Z", "line": 1},
        {"line": 3, "_error": "line 3 is not JSON: Expecting value at column 1", "text": "not json"},
        {"line": 4, "_error": "line 4 is not a JSON object", "text": "[1, 2]"},
        {"sku": "2", "price": "4.50", "line": 5},
        {"line": 6, "_error": "line 6 is not UTF-8 text", "text": "\ufffd\ufffd"},
        {"sku": "3", "price": 1, "line": 7},
    ]


def test_csv_maps_header_columns_leaves_out_empty_cells_and_numbers_rows_by_line() -> None:
    data = (
        "\ufeffSKU, price ,price_cents,name,available\r\n"
        "1, 4.50 ,,Milk,true\r\n"
        "\r\n"
        '2,,199,"Bread, white\nsliced",\r\n'
        "3,1.00\r\n"
        "4,2.00,,Eggs,false\r\n"
    ).encode()
    assert list(read_csv(data)) == [
        {"sku": "1", "price": "4.50", "name": "Milk", "available": "true", "line": 2},
        {"sku": "2", "price_cents": "199", "name": "Bread, white\nsliced", "line": 4},
        {"line": 6, "_error": "line 6 has 2 cells, the header has 5", "cells": ["3", "1.00"]},
        {"sku": "4", "price": "2.00", "name": "Eggs", "available": "false", "line": 7},
    ]


def test_csv_without_rows_is_empty() -> None:
    assert list(read_csv(b"")) == []
    assert list(read_csv(b"sku,price\r\n")) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"sku;price\n1;2\n", "the CSV header names none of the known columns"),
        (b"sku,price,Price\n1,2,3\n", "the CSV header repeats price"),
        (b"sku,price\n\xff,2\n", "the file is not UTF-8 text"),
    ],
)
def test_csv_that_cannot_be_mapped_is_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_csv(data)


def test_grocermatic_takes_sku_brand_and_size_from_the_url_else_size_from_quantity() -> None:
    rows = list(read_grocermatic(GROCERMATIC))
    assert rows == [
        {
            "item": 1,
            "name": "Taco Shells Family Pack",
            "url": "https://www.coles.com.au/product/old-el-paso-taco-shells-family-pack-18-pack-3804387",
            "price": 6,
            "quantity": 18,
            "sku": "3804387",
            "brand": "Old El Paso",
            "size": "18 pack",
        },
        {
            "item": 2,
            "name": "Essentials White Vinegar",
            "url": "https://www.woolworths.com.au/shop/productdetails/94706",
            "price": 1.7,
            "quantity": 2,
            "sku": "94706",
            "size": "2",
        },
        {
            "item": 3,
            "name": "Market Fare Broccoli",
            "url": "https://www.aldi.com.au/en/groceries/freezer/freezer-detail/ps/p/market-fare-broccoli-500g-1/",
            "price": 2.99,
            "quantity": 0.5,
            "sku": "market-fare-broccoli-500g-1",
            "size": "500g",
        },
        {
            "item": 4,
            "name": "Community Co Fettuccine #12",
            "url": "https://www.igashop.com.au/product/community-co-fettuccine-#12-850730",
            "price": 1.2,
            "quantity": 0.5,
            "sku": "850730",
            "size": "0.5",
        },
        {
            "item": 5,
            "name": "Chicken Loaf",
            "url": "https://www.coles.com.au/product/thomson's-deli-chicken-loaf-approx.-100g-3950913",
            "price": 1.58,
            "quantity": 0.1,
            "sku": "3950913",
            "brand": "Thomson's Deli",
            "size": "approx. 100g",
        },
        {"item": 6, "name": "No url at all", "price": 1.0},
        {"item": 7, "_error": "item 7 is not an object", "value": "not a product"},
    ]


def test_grocermatic_leaves_brand_out_when_the_name_is_not_in_the_slug() -> None:
    product = {
        "name": "Medium/Dark Beans",
        "url": "https://www.coles.com.au/product/daley-street-medium/dark-beans-1kg-5556286",
        "price": 30,
    }
    (row,) = read_grocermatic(json.dumps({"productInfo": [product]}).encode())
    assert row["sku"] == "5556286"
    assert "brand" not in row
    assert "size" not in row


@pytest.mark.parametrize(
    "data", [b'{"products": []}', b"[]", b'{"productInfo": {"name": "x"}}', b"{not json"]
)
def test_grocermatic_refuses_a_file_without_a_product_list(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a Grocermatic file|the file is not JSON"):
        read_grocermatic(data)


def test_heissepreise_maps_store_id_and_newest_history_date() -> None:
    assert list(read_rows("latest-canonical.json", HEISSEPREISE)) == [
        {
            "item": 1,
            "chain": "billa",
            "sku": "00-436117",
            "name": "Clever Haltbare Vollmilch",
            "price": 1.19,
            "unit": "ml",
            "quantity": 1000.0,
            "url": "/produkte/clever-haltbare-vollmilch-00-436117",
            "observed_at": "2023-05-01",
            "size": "1000 ml",
        },
        {
            "item": 2,
            "chain": "spar",
            "sku": 5100,
            "name": "Bauernbrot",
            "price": 2.5,
            "unit": "g",
            "quantity": 750,
            "size": "750 g",
        },
        {"item": 3, "_error": "item 3 is not an object", "value": 42},
    ]


def test_heissepreise_refuses_a_document_that_is_not_a_list() -> None:
    with pytest.raises(ValueError, match="not a heissepreise file"):
        read_heissepreise(b'{"store": "billa"}')


@pytest.mark.parametrize("chain", ["aldi", "coles", "iga", "woolworths"])
def test_real_grocermatic_files_give_one_row_with_a_sku_per_product(chain: str) -> None:
    data = (DATA / f"{chain}.json").read_bytes()
    products = json.loads(data)["productInfo"]
    rows = list(read_rows(f"{chain}.json", data))
    assert len(rows) == len(products) > 100
    assert all(row.get("sku") for row in rows)
    if chain == "aldi":
        # Aldi's urls carry no product number: the slug is the sku.
        assert all(row["url"].rstrip("/").endswith("/" + row["sku"]) for row in rows)
    else:
        assert all(row["sku"].isdigit() and row["url"].endswith(row["sku"]) for row in rows)
