"""Name the units of measure a price row may carry."""

# Metric weights and volumes, counts as grocers write them, lengths, and the units of
# heissepreise's canonical files (`stk` pieces, `wg` washing cycles).
KNOWN_UNITS: frozenset[str] = frozenset(
    {
        "g",
        "kg",
        "mg",
        "ml",
        "l",
        "cl",
        "dl",
        "each",
        "ea",
        "pack",
        "pk",
        "stk",
        "piece",
        "sheets",
        "m",
        "cm",
        "mm",
        "wg",
    }
)


def is_known_unit(text: str) -> bool:
    """Tell whether text names a known unit, ignoring case and surrounding spaces."""
    return text.strip().lower() in KNOWN_UNITS
