"""The world's shelves written in Coles' and Woolworths' web dialects: pure functions of world objects.

Each function returns the JSON body (or HTML) a real chain's site answers, for the same listings the
storefront's own API shows, so every dialect carries the same ground truth. The odd cases of real
shelves appear as the world draws them: was-prices during specials, the stated unit price, multi-buys,
member prices, items sold by weight, out of stock, ad and bundle tiles, an empty category.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from simulator.shelf import UnitPrice, dollars, unit_price
from simulator.world import Category, Listing, Offer, SoldBy, Store, draw

Dialect = Literal["storefront", "coles", "woolworths"]
DIALECTS: tuple[Dialect, ...] = ("storefront", "coles", "woolworths")
AUTO = "auto"
AUTO_DIALECTS: tuple[Dialect, ...] = ("coles", "woolworths")
"""The dialects of the world's first chains when served as real chains; the others keep the storefront's."""

# What each dialect's shelves can show beside the price; the storefront's own API shows no offers.
SHOWN_OFFERS: dict[Dialect, frozenset[str]] = {
    "storefront": frozenset(),
    "coles": frozenset({"multibuy", "member"}),
    "woolworths": frozenset({"multibuy", "member"}),
}

COLES_PAGE_SIZE = 48
WOOLWORTHS_MAX_PAGE_SIZE = 36
AD_TILE_SHARE = 0.5
BUNDLE_TILE_SHARE = 0.5
# A category every dialect tree lists with no products in it, as real trees carry seasonal aisles.
EMPTY_CATEGORY = ("seasonal-range", "Seasonal Range")

CHALLENGE_PAGE = """<!DOCTYPE html>
<html>
<head><title>Pardon Our Interruption</title></head>
<body>
<h1>Pardon Our Interruption</h1>
<p>As you were browsing something about your browser made us think you were a bot.</p>
<script src="/_Incapsula_Resource?SWJIYLWA=simulated"></script>
</body>
</html>
"""


@dataclass(frozen=True, slots=True)
class Shelf:
    """One listing of a page with everything its label shows on the day."""

    listing: Listing
    sold_by: SoldBy
    offer: Offer | None


def parse_choice(text: str) -> tuple[str, Dialect] | None:
    """Read a chain's dialect as written CHAIN=DIALECT; None for `auto`; ValueError for anything else."""
    if text == AUTO:
        return None
    chain, _, dialect = text.partition("=")
    if not chain or dialect not in DIALECTS:
        raise ValueError(f"give auto or CHAIN=DIALECT with a dialect of {', '.join(DIALECTS)}: not {text!r}")
    return chain, dialect


def chain_dialects(chains: Sequence[str], choices: Sequence[str]) -> dict[str, Dialect]:
    """Return each chain's dialect: `auto` serves the first chain as Coles, the second as Woolworths."""
    parsed = [parse_choice(choice) for choice in choices]
    dialects: dict[str, Dialect] = {}
    if None in parsed:
        dialects.update(zip(chains, AUTO_DIALECTS, strict=False))
    dialects.update(choice for choice in parsed if choice is not None)
    return dialects


def seo_token(name: str) -> str:
    """Return a category's URL token as the chains write it: "Dairy, Eggs & Fridge" -> dairy-eggs-fridge."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def node_id(chain: str, token: str) -> str:
    """Return a Woolworths-style category node id, fixed by the chain and the category."""
    return "1_" + hashlib.blake2b(f"{chain}/{token}".encode(), digest_size=4).hexdigest().upper()


def home_page(title: str, build_id: str) -> str:
    """Return a Next.js home page whose __NEXT_DATA__ script names the build id."""
    data = {
        "props": {"pageProps": {"isServerSide": True}},
        "page": "/",
        "query": {},
        "buildId": build_id,
        "runtimeConfig": {"ENVIRONMENT": "simulated"},
        "isFallback": False,
        "gssp": True,
        "locale": "en",
    }
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f'<title>{title}</title></head>\n<body>\n<div id="__next"><main>{title}</main></div>\n'
        f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data)}</script>\n'
        "</body>\n</html>\n"
    )


def _unit(shelf: Shelf) -> UnitPrice | None:
    """Return the unit price the shelf's label states."""
    listing = shelf.listing
    return unit_price(listing.size, listing.price_cents, by_weight=shelf.sold_by == "kg")


def _amount(cents: int) -> float:
    """Return cents as the dollars a JSON body carries."""
    return round(cents / 100, 2)


def _multibuy_text(offer: Offer) -> str:
    """Write a multi-buy as shelves do: 2 for $5.00."""
    return f"{offer.quantity} for {dollars(offer.total_cents)}"


# --- Coles ------------------------------------------------------------------------------------


def coles_stores(stores: Sequence[Store]) -> dict[str, Any]:
    """Return a Coles store list."""
    return {
        "stores": [
            {
                "storeId": store.id,
                "storeName": store.name,
                "brandId": "COL",
                "address": {
                    "suburb": store.name.split(" ", 1)[-1],
                    "state": store.state,
                    "postcode": store.postcode,
                },
            }
            for store in stores
        ]
    }


def coles_categories(categories: Sequence[Category]) -> dict[str, Any]:
    """Return a Coles category tree: one level-1 item per category, the empty one and a campaign."""
    items = [
        _coles_category(index, category.name, category.products)
        for index, category in enumerate(categories, start=1)
    ]
    items.append(_coles_category(len(items) + 1, EMPTY_CATEGORY[1], 0))
    # A campaign lists products of other categories again: a scraper walks catalog items only.
    campaign = _coles_category(len(items) + 1, "Down Down", sum(c.products for c in categories))
    items.append({**campaign, "type": "CAMPAIGN", "subType": "SPECIALS"})
    return {"data": {"menuItems": {"restrictedIds": [], "items": items}}}


def _coles_category(number: int, name: str, products: int) -> dict[str, Any]:
    """Return one item of a Coles category tree."""
    return {
        "id": str(1000 + number),
        "level": 1,
        "name": name,
        "originalName": name,
        "productCount": products,
        "seoToken": seo_token(name),
        "type": "CATALOG",
        "subType": None,
        "childItems": [],
    }


def coles_browse(
    seed: int,
    chain: str,
    token: str,
    page: int,
    shelves: Sequence[Shelf],
    total: int,
    *,
    renamed: bool = False,
) -> dict[str, Any]:
    """Return a Coles browse page: product tiles, with an ad and a bundle tile on some pages."""
    results: list[dict[str, Any]] = [_coles_tile(shelf, renamed=renamed) for shelf in shelves]
    if results and draw(seed, "ad-tile", chain, token, page) < AD_TILE_SHARE:
        at = int(draw(seed, "ad-tile-at", chain, token, page) * len(results))
        results.insert(at, _coles_ad_tile(chain, token, page))
    if results and draw(seed, "bundle-tile", chain, token, page) < BUNDLE_TILE_SHARE:
        results.append(_coles_bundle_tile(shelves[:2]))
    return {
        "pageProps": {
            "searchResults": {
                "didYouMean": None,
                "noOfResults": total,
                "start": (page - 1) * COLES_PAGE_SIZE,
                "pageSize": COLES_PAGE_SIZE,
                "keyword": None,
                "resultType": 1,
                "results": results,
            }
        },
        "__N_SSP": True,
    }


def _coles_tile(shelf: Shelf, *, renamed: bool) -> dict[str, Any]:
    """Return one product tile; `renamed` moves its pricing under another key, as a site redesign does."""
    listing, offer = shelf.listing, shelf.offer
    weighed = shelf.sold_by == "kg"
    stated = _unit(shelf)
    pricing: dict[str, Any] = {
        "now": _amount(listing.price_cents),
        "was": 0 if listing.was_price_cents is None else _amount(listing.was_price_cents),
        "unit": {"quantity": 1, "isWeighted": weighed}
        if stated is None
        else {
            "quantity": 1,
            "ofMeasureQuantity": stated.quantity,
            "ofMeasureUnits": stated.unit,
            "price": _amount(stated.cents),
            "ofMeasureType": stated.unit,
            "isWeighted": weighed,
        },
        "comparable": None
        if stated is None
        else f"{dollars(stated.cents)} per {stated.quantity}{_coles_unit(stated)}",
        "promotionType": None,
        "onlineSpecial": False,
        "offerDescription": None,
        "multiBuyPromotion": None,
        "priceDescription": None,
        "saveStatement": None,
        "saveAmount": None,
        "savePercent": None,
    }
    if listing.was_price_cents is not None:
        save = listing.was_price_cents - listing.price_cents
        pricing |= {
            "promotionType": "SPECIAL",
            "saveStatement": f"Save {dollars(save)}",
            "saveAmount": _amount(save),
            "savePercent": round(100 * save / listing.was_price_cents),
        }
    if offer is not None and offer.kind == "multibuy":
        pricing |= {
            "promotionType": "MULTI_BUY",
            "offerDescription": _multibuy_text(offer),
            "multiBuyPromotion": {
                "type": "MULTI_BUY",
                "min": offer.quantity,
                "reward": _amount(offer.total_cents),
            },
        }
    elif offer is not None:
        pricing |= {
            "memberPrice": _amount(offer.total_cents),
            "promotionType": "MEMBER_PRICE",
            "offerDescription": f"Flybuys member price {dollars(offer.total_cents)}",
        }
    return {
        "_type": "PRODUCT",
        "id": int(listing.sku) if listing.sku.isdigit() else listing.sku,
        "adId": None,
        "adSource": None,
        "featured": False,
        "name": listing.name,
        "brand": listing.brand or "",
        "description": listing.name.upper(),
        "size": "per kg" if weighed else listing.size,
        "availability": listing.available,
        "availabilityType": "SHIPPING",
        "imageUris": [],
        "priceInfo" if renamed else "pricing": pricing,
    }


def _coles_unit(stated: UnitPrice) -> str:
    """Return a unit as Coles labels write it: g, kg, mL, L, ea."""
    return {"ml": "mL", "l": "L"}.get(stated.unit, stated.unit)


def _coles_ad_tile(chain: str, token: str, page: int) -> dict[str, Any]:
    """Return an ad tile: not a product, a scraper skips it."""
    return {
        "_type": "SINGLE_TILE",
        "adId": f"sim-ad-{chain}-{token}-{page}",
        "adSource": "CITRUS",
        "tileImage": {"altText": "Try something new", "uri": "/content/dam/ads/banner.jpg"},
        "primaryCta": {"text": "Shop now", "link": f"/browse/{token}"},
    }


def _coles_bundle_tile(shelves: Sequence[Shelf]) -> dict[str, Any]:
    """Return a bundle tile of products listed on the page already: a scraper skips it too."""
    listings = [shelf.listing for shelf in shelves]
    return {
        "_type": "PRODUCT_BUNDLE",
        "id": 990000 + len(listings),
        "adId": None,
        "name": "Bundle",
        "bundleProducts": [{"id": listing.sku, "quantity": 1} for listing in listings],
        "pricing": {"now": _amount(sum(listing.price_cents for listing in listings)), "was": 0},
    }


def coles_product(
    listing_sku: str, name: str, brand: str | None, size: str, barcode: str | None
) -> dict[str, Any]:
    """Return a Coles product page's data, with its barcode."""
    return {
        "pageProps": {
            "product": {
                "_type": "PRODUCT",
                "id": int(listing_sku) if listing_sku.isdigit() else listing_sku,
                "name": name,
                "brand": brand or "",
                "description": name.upper(),
                "size": size,
                "gtin": barcode,
            }
        },
        "__N_SSP": True,
    }


# --- Woolworths -------------------------------------------------------------------------------


def woolworths_stores(stores: Sequence[Store]) -> dict[str, Any]:
    """Return a Woolworths store locator answer."""
    return {
        "Stores": [
            {
                "StoreNo": store.id,
                "Division": "SUPERMARKETS",
                "Name": store.name,
                "Suburb": store.name.split(" ", 1)[-1],
                "State": store.state,
                "Postcode": store.postcode,
                "IsOpen": True,
            }
            for store in stores
        ]
    }


def woolworths_fulfilment(store_id: str) -> dict[str, Any]:
    """Return the answer to choosing a store for the session's pick-up."""
    return {
        "IsSuccessful": True,
        "FulfilmentStoreId": int(store_id) if store_id.isdigit() else store_id,
        "FulfilmentMethod": "Pickup",
        "ResponseMessage": None,
    }


def woolworths_categories(chain: str, categories: Sequence[Category]) -> dict[str, Any]:
    """Return a Woolworths category tree: one node per category, the empty one and the specials group."""
    nodes = [_woolworths_node(chain, category.name, category.products) for category in categories]
    nodes.append(_woolworths_node(chain, EMPTY_CATEGORY[1], 0))
    specials = _woolworths_node(chain, "Specials", sum(c.products for c in categories))
    nodes.append({**specials, "NodeId": "specialsgroup", "IsSpecial": True})
    return {"Categories": nodes}


def _woolworths_node(chain: str, name: str, products: int) -> dict[str, Any]:
    """Return one node of a Woolworths category tree."""
    token = seo_token(name)
    return {
        "NodeId": node_id(chain, token),
        "Description": name,
        "UrlFriendlyName": token,
        "ProductCount": products,
        "IsSpecial": False,
        "Children": [],
    }


def woolworths_browse(
    seed: int,
    chain: str,
    token: str,
    page: int,
    name: str,
    shelves: Sequence[Shelf],
    total: int,
    *,
    renamed: bool = False,
) -> dict[str, Any]:
    """Return a Woolworths browse answer: one bundle per product, and a bundle of two on some pages."""
    bundles = [_woolworths_bundle(_woolworths_product(shelf)) for shelf in shelves]
    if len(shelves) >= 2 and draw(seed, "bundle-tile", chain, token, page) < BUNDLE_TILE_SHARE:
        bundles.append(_woolworths_bundle(_woolworths_pack(shelves[:2])))
    return {
        "Items" if renamed else "Bundles": bundles,
        "TotalRecordCount": total,
        "UpperDynamicContent": None,
        "LowerDynamicContent": None,
        "Success": True,
        "Description": name,
    }


def _woolworths_bundle(product: dict[str, Any]) -> dict[str, Any]:
    """Wrap a product in the bundle a browse answer lists it in."""
    return {"Products": [product], "Name": product["Name"], "DisplayName": product["DisplayName"]}


def _woolworths_product(shelf: Shelf) -> dict[str, Any]:
    """Return one product as Woolworths lists it; its was-price is the shelf price unless on special."""
    listing, offer = shelf.listing, shelf.offer
    weighed = shelf.sold_by == "kg"
    stated = _unit(shelf)
    size = "per kg" if weighed else listing.size
    price = _amount(listing.price_cents)
    was = price if listing.was_price_cents is None else _amount(listing.was_price_cents)
    measure = None if stated is None else f"{stated.quantity}{stated.unit.upper()}"
    centre_tag: dict[str, Any] = {
        "TagContent": None,
        "TagLink": None,
        "FallbackText": None,
        "TagType": "None",
    }
    if offer is not None and offer.kind == "multibuy":
        centre_tag |= {
            "TagContent": f'<div class="multi-buy">Any {_multibuy_text(offer)}</div>',
            "TagType": "MultiBuy",
        }
    return {
        "TileID": 1,
        "Stockcode": int(listing.sku) if listing.sku.isdigit() else listing.sku,
        "Barcode": None,
        "GtinFormat": 0,
        "CupPrice": None if stated is None else _amount(stated.cents),
        "CupMeasure": measure,
        "CupString": None if stated is None else f"{dollars(stated.cents)} / {measure}",
        "HasCupPrice": stated is not None,
        "Price": price,
        "InstorePrice": price,
        "Name": listing.name,
        "DisplayName": listing.name if listing.name.endswith(size) else f"{listing.name} {size}",
        "UrlFriendlyName": seo_token(listing.name),
        "Description": f" {listing.name}<br>{size}",
        "IsNew": False,
        "IsHalfPrice": False,
        "IsOnlineOnly": False,
        "IsOnSpecial": listing.was_price_cents is not None,
        "InstoreIsOnSpecial": listing.was_price_cents is not None,
        "IsEdrSpecial": False,
        "SavingsAmount": round(was - price, 2),
        "WasPrice": was,
        "InstoreWasPrice": was,
        "MemberPrice": _amount(offer.total_cents) if offer is not None and offer.kind == "member" else None,
        "Unit": "KG" if weighed else "Each",
        "MinimumQuantity": 1,
        "IsRanged": True,
        "IsInStock": listing.available,
        "PackageSize": size,
        "IsAvailable": listing.available,
        "InstoreIsAvailable": listing.available,
        "IsPurchasable": listing.available,
        "Brand": listing.brand,
        "IsBundle": False,
        "IsInFamily": False,
        "CentreTag": centre_tag,
        "ChildProducts": None,
        "UrlOverride": None,
    }


def _woolworths_pack(shelves: Sequence[Shelf]) -> dict[str, Any]:
    """Return a bundle product of items listed on the page already: a scraper skips it."""
    product = _woolworths_product(shelves[0])
    total = _amount(sum(shelf.listing.price_cents for shelf in shelves))
    return product | {
        "Stockcode": 990000 + len(shelves),
        "Name": "Bundle",
        "DisplayName": "Bundle",
        "Price": total,
        "InstorePrice": total,
        "WasPrice": total,
        "InstoreWasPrice": total,
        "PackageSize": "Bundle",
        "CupPrice": None,
        "CupMeasure": None,
        "CupString": None,
        "HasCupPrice": False,
        "IsOnSpecial": False,
        "MemberPrice": None,
        "IsBundle": True,
        "CentreTag": {"TagContent": None, "TagLink": None, "FallbackText": None, "TagType": "None"},
    }


def woolworths_product(
    sku: str, name: str, brand: str | None, size: str, barcode: str | None
) -> dict[str, Any]:
    """Return a Woolworths product detail answer, with its barcode."""
    return {
        "Product": {
            "Stockcode": int(sku) if sku.isdigit() else sku,
            "Barcode": barcode,
            "GtinFormat": 13,
            "Name": name,
            "DisplayName": f"{name} {size}",
            "PackageSize": size,
            "Brand": brand,
        },
        "Nutrition": None,
    }
