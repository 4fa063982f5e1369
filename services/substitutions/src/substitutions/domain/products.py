"""Understand a product from how a shop describes it: brand, normalised name, size.

Pure functions: shops write "6 x 375mL", "1.5kg", "Each", "12 pack" or only a bare number
(Grocermatic's quantity: kilograms, litres or a count, without saying which). A size is
turned into an amount in a base unit (grams, millilitres, pieces, millimetres) so that two
sizes can be compared whatever their spelling.
"""

import functools
import math
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Dimension = Literal["mass", "volume", "count", "length", "bare"]
"""What a size measures; `bare` is a number without a unit (kg, L or a count)."""

_MASS = {"mg": 0.001, "g": 1.0, "gm": 1.0, "gms": 1.0, "grams": 1.0, "kg": 1000.0, "kgs": 1000.0}
_VOLUME = {"ml": 1.0, "cl": 10.0, "dl": 100.0, "l": 1000.0, "lt": 1000.0, "ltr": 1000.0, "litre": 1000.0}
_VOLUME |= {"litres": 1000.0, "liter": 1000.0, "liters": 1000.0}
_COUNT: tuple[str, ...] = ("pack", "pk", "each", "ea", "pieces", "piece", "pc", "pcs", "sheets", "rolls")
_COUNT += ("roll", "tabs", "tablets", "capsules", "caps", "bags", "sachets", "pods", "serves", "stk", "wg")
_LENGTH = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_UNITS: dict[str, tuple[Dimension, float]] = {
    **{unit: ("mass", f) for unit, f in _MASS.items()},
    **{unit: ("volume", f) for unit, f in _VOLUME.items()},
    **{unit: ("length", f) for unit, f in _LENGTH.items()},
    **dict.fromkeys(_COUNT, ("count", 1.0)),
}
_UNIT = "|".join(sorted((re.escape(unit) for unit in _UNITS), key=len, reverse=True))
_NUM = r"[0-9]+(?:[.,][0-9]+)?"
# "6 x 375mL", "4x400g", "375mL x 6"; then "1.5kg", "12 pack", "pack of 12".
_MULTI = re.compile(rf"\b({_NUM})\s*x\s*({_NUM})\s*({_UNIT})\b|\b({_NUM})\s*({_UNIT})\s*x\s*({_NUM})\b")
_SINGLE = re.compile(rf"\b({_NUM})\s*({_UNIT})\b")
_PACK_OF = re.compile(rf"\bpack\s+of\s+({_NUM})\b")
_EACH = re.compile(r"^\s*(each|ea|1 each)\s*$")
_BARE = re.compile(rf"^\s*({_NUM})\s*$")
_APPROX = re.compile(r"\b(?:approximately|approx|min|per|avg|av)\b\.?")
_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHE = re.compile("['\u2019`]")
_PARENS = re.compile(r"[()\[\]|]")

# Words that tell a product's variant apart: a name with one and a name without are not the same item.
VARIANT_WORDS: frozenset[str] = frozenset(
    (
        *("organic", "lite", "light", "diet", "zero", "sugarfree", "decaf", "unsalted", "salted"),
        *("reduced", "low", "fat", "free", "gluten", "lactose", "skim", "skinny", "vegan"),
        *("wholemeal", "wholegrain", "multigrain", "sensitive", "eco", "premium", "extra", "mild"),
        # Not where it comes from ("Australian Pitted Prunes" are the shop's other "Prunes Pitted"), nor
        # "plain" or "original": they name the usual variant, which a name without them is as well.
        *("hot", "spicy", "sweet", "sour", "smoked", "crunchy", "smooth"),
    )
)


@dataclass(frozen=True, slots=True)
class Size:
    """A size in a base unit: grams, millilitres, pieces or millimetres; `bare` keeps the raw number."""

    amount: float
    dimension: Dimension
    pack: int | None = None

    @property
    def unit(self) -> "Size | None":
        """Return one item of a pack (`6 x 200mL`: 200 mL), None when not a pack."""
        return Size(self.amount / self.pack, self.dimension) if self.pack else None

    def describe(self) -> str:
        """Write the size back in a short readable form."""
        unit = {"mass": "g", "volume": "mL", "count": "pcs", "length": "mm", "bare": ""}[self.dimension]
        if self.pack:
            return f"{self.pack} x {self.amount / self.pack:g}{unit}"
        return f"{self.amount:g}{unit}"


@dataclass(frozen=True, slots=True)
class ParsedProduct:
    """A product as the matcher sees it: normalised words, brand and size."""

    chain: str
    sku: str
    name: str
    brand: str | None
    title: str
    kind: str
    size: Size | None
    category: str | None
    """What L4 compares: `shared:` and the shared path when mapped, else the chain's own category."""
    barcode: str | None
    own_brand: bool = False
    """Whether the brand is the chain's own: its name, or a house brand learned for it."""

    @property
    def brand_key(self) -> str:
        """Return the brand without spaces: shops write `25 Degrees South` and `25degrees South`."""
        return (self.brand or "").replace(" ", "")

    @property
    def key(self) -> tuple[str, str]:
        """Return what makes two listings the same item when barcodes cannot say: brand and name words."""
        return (self.brand_key, " ".join(sorted(self.kind.split())))


def fold(text: str) -> str:
    """Lower-case text and drop its accents: `Käse` -> `kase`, `Grüße` -> `grusse`."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("ß", "ss"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def normalise(text: str) -> str:
    """Lower-case and fold text, spell `&` as `and`, drop apostrophes and punctuation."""
    text = _APOSTROPHE.sub("", fold(text).replace("&", " and "))
    return " ".join(_WORD.findall(text))


def _number(text: str) -> float:
    """Read a number written with a decimal point or comma."""
    return float(text.replace(",", "."))


def parse_size(text: str | None) -> Size | None:
    """Read a size such as `2L`, `6 x 375mL`, `500g`, `Each`, `12 pack` or a bare `0.485`."""
    if not text:
        return None
    lowered = _APPROX.sub(" ", text.lower())
    if _EACH.match(lowered):
        return Size(1.0, "count")
    if bare := _BARE.match(lowered):
        value = _number(bare.group(1))
        return Size(value, "bare") if value > 0 else None
    if multi := _MULTI.search(lowered):
        if multi.group(1):
            count, each, unit = multi.group(1), multi.group(2), multi.group(3)
        else:
            each, unit, count = multi.group(4), multi.group(5), multi.group(6)
        dimension, factor = _UNITS[unit]
        pack = round(_number(count))
        if dimension == "count":
            return Size(pack * _number(each), "count")
        return Size(pack * _number(each) * factor, dimension, pack if pack > 1 else None)
    if single := _SINGLE.search(lowered):
        dimension, factor = _UNITS[single.group(2)]
        amount = _number(single.group(1)) * factor
        return Size(amount, dimension) if amount > 0 else None
    if pack_of := _PACK_OF.search(lowered):
        return Size(_number(pack_of.group(1)), "count")
    return None


def strip_sizes(text: str) -> str:
    """Remove the sizes written inside a name: `Cola 1.25L` -> `Cola`."""
    lowered = text.lower()
    for pattern in (_MULTI, _SINGLE, _PACK_OF):
        lowered = pattern.sub(" ", lowered)
    return _APPROX.sub(" ", lowered)


def sizes_compatible(a: Size | None, b: Size | None, *, tolerance: float) -> bool:
    """Tell whether two sizes are equal within a relative tolerance (unknown sizes are not)."""
    if a is None or b is None:
        return False
    ratio = size_ratio(a, b)
    return ratio is not None and ratio <= 1 + tolerance


def size_ratio(a: Size, b: Size) -> float | None:
    """Return how many times larger the larger size is (1.0: equal), None if not comparable."""
    if a.dimension == b.dimension:
        x, y = a.amount, b.amount
    elif a.dimension == "bare" or b.dimension == "bare":
        bare, other = (a, b) if a.dimension == "bare" else (b, a)
        if other.dimension == "length":
            return None
        # A bare quantity is kilograms or litres for weights and volumes, a count for counts.
        x, y = (bare.amount * 1000.0 if other.dimension in ("mass", "volume") else bare.amount), other.amount
    else:
        return None
    if x <= 0 or y <= 0:
        return None
    return max(x, y) / min(x, y)


def size_bucket(size: Size | None, *, width: float) -> int | None:
    """Bucket a size on a log scale: sizes within `width` share a bucket or are neighbours."""
    if size is None:
        return None
    amount = size.amount * 1000.0 if size.dimension == "bare" else size.amount
    return math.floor(math.log(amount) / math.log1p(width)) if amount > 0 else None


def infer_brand(words: list[str], brands: Collection[str]) -> str | None:
    """Return the longest known brand that starts the name's words, if any."""
    for length in range(min(4, len(words)), 0, -1):
        candidate = " ".join(words[:length])
        if candidate in brands:
            return candidate
    return None


def house_brands(
    listings: Iterable[tuple[str, str, str | None]],
    *,
    min_products: int = 8,
    share: float = 0.002,
    extend: float = 0.9,
) -> set[str]:
    """Learn house brands from (chain, name, brand) listings: leading words only one chain uses.

    A first word of names without a brand is a house brand of its chain when the chain starts
    at least `min_products` such names (and `share` of its listings) with it and no other chain
    starts a name with it or names it as a brand; it grows by the next word while nearly all
    (`extend`) of those names go on alike ("zuruck" -> "zuruck zum ursprung", but "milfina"
    stays: its names go on with many words). One chain alone has nothing to compare with.
    """
    starts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    longer: dict[str, set[str]] = defaultdict(set)
    used: dict[str, set[str]] = defaultdict(set)
    sizes: dict[str, int] = defaultdict(int)
    for chain, name, brand in listings:
        sizes[chain] += 1
        words = normalise(strip_sizes(name)).split()
        if brand:
            # A brand named elsewhere, or its first words, is nobody's house brand.
            named = normalise(brand).split()
            for length in range(1, len(named) + 1):
                used[" ".join(named[:length])].add(chain)
            for length in range(1, min(_HOUSE_WORDS, len(words)) + 1):
                used[" ".join(words[:length])].add(chain)
            continue
        for length in range(1, min(_HOUSE_WORDS, len(words) - 1) + 1):
            phrase = " ".join(words[:length])
            starts[phrase][chain] += 1
            used[phrase].add(chain)
            if length > 1:
                longer[" ".join(words[: length - 1])].add(phrase)
    if len(sizes) < 2:
        return set()
    brands: set[str] = set()
    for phrase, chains in starts.items():
        if " " in phrase or len(chains) != 1 or len(used[phrase]) != 1:
            continue
        [(chain, count)] = chains.items()
        if count < max(min_products, share * sizes[chain]):
            continue
        while True:
            # Only names of this chain continue a phrase that only this chain starts names with.
            best = max(
                ((starts[p][chain], p) for p in longer.get(phrase, ()) if len(used[p]) == 1), default=(0, "")
            )
            if best[0] < extend * count:
                break
            phrase = best[1]
        brands.add(phrase)
    return brands


_HOUSE_WORDS = 3


def parse_product(
    *,
    chain: str,
    sku: str,
    name: str,
    brand: str | None = None,
    size: str | None = None,
    category: str | None = None,
    barcode: str | None = None,
    shared_category: str | None = None,
    brands: Collection[str] = (),
    own_brands: Collection[str] = (),
) -> ParsedProduct:
    """Parse what a shop says about a product; `brands` are known brands to find in a name without one.

    `own_brands` are the chains' house brands: a product of one, or named after its chain, is
    of the chain's own brand.
    """
    parsed_size = _with_pack(parse_size(size) or parse_size(name), name)
    words = normalise(_PARENS.sub(" ", strip_sizes(name))).split()
    brand_key = normalise(brand) if brand else None
    if brand_key:
        brand_words = brand_key.split()
        if words[: len(brand_words)] == brand_words:
            words = words[len(brand_words) :]
    else:
        brand_key = infer_brand(words, brands)
        if brand_key:
            words = words[len(brand_key.split()) :]
    kind = " ".join(words)
    title = f"{brand_key} {kind}".strip() if brand_key else kind
    return ParsedProduct(
        chain=chain,
        sku=sku,
        name=name,
        brand=brand_key or None,
        title=title,
        kind=kind or title,
        size=parsed_size,
        category=_l4_category(category, shared_category),
        barcode=barcode,
        own_brand=bool(brand_key) and (brand_key in own_brands or brand_key == normalise(chain)),
    )


def _with_pack(size: Size | None, name: str) -> Size | None:
    """Return a size with the pack its name states: "Milk 6 pack" sized 1.2 L is 6 x 200 mL."""
    if size is None or size.pack or size.dimension not in ("mass", "volume"):
        return size
    stated = _NAMED_PACK.search(name.lower())
    count = round(_number(stated.group(1) or stated.group(2))) if stated else 0
    return Size(size.amount, size.dimension, count) if count > 1 else size


_NAMED_PACK = re.compile(rf"\b({_NUM})\s*(?:pack|pk)\b|\bpack\s+of\s+({_NUM})\b")


def _l4_category(category: str | None, shared_category: str | None) -> str | None:
    """Return the category L4 compares: the shared one where the chain's is mapped, which chains share."""
    if shared_category:
        # Normalised chain categories never hold `:`, so a shared path cannot equal one of them.
        return f"shared:{shared_category}"
    return normalise(category) if category else None


def ngram_vector(text: str, dimensions: int) -> npt.NDArray[np.float32]:
    """Return the unit vector of a text's character trigrams, with spaces and hyphens left out.

    Written together or apart ("rahm-camembert", "rahmcamembert"), a name keeps its trigrams,
    so names alike letter by letter are alike here in any language. Trigrams are hashed
    into `dimensions` slots by a stable checksum, so a name has one vector in every process.
    """
    letters = "".join(normalise(text).split())
    vector = np.zeros(dimensions, dtype=np.float32)
    for start in range(max(len(letters) - 2, 1) if letters else 0):
        vector[_slot(letters[start : start + 3], dimensions)] = 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


@functools.lru_cache(maxsize=65536)
def _slot(trigram: str, dimensions: int) -> int:
    """Hash a trigram to its slot."""
    return zlib.crc32(trigram.encode()) % dimensions


VARIANT_PHRASES: frozenset[tuple[str, str]] = frozenset(
    (
        *(("low", "fat"), ("reduced", "fat"), ("fat", "free"), ("gluten", "free"), ("lactose", "free")),
        *(("sugar", "free"), ("salt", "reduced"), ("reduced", "salt")),
    )
)
"""Two variant words that name one variant: "low fat" is one difference, not two."""

NOT_VARIANT_PHRASES: frozenset[tuple[str, str]] = frozenset(
    (("free", "range"), ("extra", "virgin"), ("low", "gi"))
)
"""A variant word whose next word makes it another thing: how hens are kept, an oil's grade, a claim."""

_VARIANT_NAMES = sorted([*VARIANT_WORDS, *(" ".join(phrase) for phrase in VARIANT_PHRASES)])
_VARIANT_BITS = {name: 1 << bit for bit, name in enumerate(_VARIANT_NAMES)}


def variant_mask(title: str) -> int:
    """Return the variant words (and phrases) of a title as bits, so that differences count with one XOR."""
    mask = 0
    words = title.split()
    at = 0
    while at < len(words):
        pair = (words[at], words[at + 1]) if at + 1 < len(words) else None
        if pair in NOT_VARIANT_PHRASES:
            at += 2
            continue
        if pair == ("free", "from") and at + 2 < len(words) and (words[at + 2], "free") in VARIANT_PHRASES:
            # One shop's "Free From Lactose" is the other's "Lactose Free".
            mask |= _VARIANT_BITS[f"{words[at + 2]} free"]
            at += 3
            continue
        if pair in VARIANT_PHRASES:
            mask |= _VARIANT_BITS[" ".join(pair)]
            at += 2
            continue
        mask |= _VARIANT_BITS.get(words[at], 0)
        at += 1
    return mask


def word_stem(word: str) -> str:
    """Return a word without its plural ending: `strawberries` -> `strawberry`, `tomatoes` -> `tomato`."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("oes", "ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_JOINING = frozenset(("and", "with", "in", "of", "the", "a", "for", "on", "or", "no", "x"))


def kind_words(kind: str) -> frozenset[str]:
    """Return the stems of a kind's words, less joining words and numbers: what tells items apart."""
    return frozenset(word_stem(word) for word in kind.split() if word not in _JOINING and not word.isdigit())


def distinguishing_words(listings: Iterable[tuple[str, str, str]], *, min_places: int = 3) -> frozenset[str]:
    """Learn from (chain, brand, kind) listings the words that tell one brand's items apart.

    Two listings of one brand at one chain whose kinds differ in one word only fill one place
    with two words ("pasta penne" and "pasta farfalle" of one brand): each of those words names
    an item of its own. A word so learned in at least `min_places` places distinguishes items
    (a flavour, a shape, a meat); the fixed `VARIANT_WORDS` are left out, being counted apart.
    """
    places: dict[tuple[str, str, frozenset[str]], set[str]] = defaultdict(set)
    for chain, brand, kind in listings:
        words = kind_words(kind)
        for word in words:
            places[(chain, brand, words.difference((word,)))].add(word)
    counts: dict[str, int] = defaultdict(int)
    for fillers in places.values():
        if len(fillers) > 1:
            for word in fillers:
                counts[word] += 1
    fixed = {word_stem(word) for word in VARIANT_WORDS}
    return frozenset(word for word, count in counts.items() if count >= min_places and word not in fixed)
