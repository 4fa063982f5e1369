"""pricestream's shared category tree: the vocabulary of ProductObserved's `shared_category`.

Each chain files products under its own categories; the scraper maps them onto this one
tree (its category map, which operators review), so that categories mean the same across
chains. A path is `top` or `top/leaf`, lower-case words joined by `-`. Every service that
reads `shared_category` reads its labels and parents here, never from a copy.
"""

import re
from dataclasses import dataclass

_PATH = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)?")


@dataclass(frozen=True, slots=True)
class SharedCategory:
    """One node of the shared tree: its path and the label shoppers read."""

    path: str
    label: str

    @property
    def parent(self) -> str | None:
        """Return the path of the top-level category above this one (None at the top)."""
        top, _, leaf = self.path.partition("/")
        return top if leaf else None


# Top-level categories first, each followed by its children; modelled on the browse trees of
# Australia's two largest chains, so that their categories map without losing meaning.
_TREE: tuple[tuple[str, str], ...] = (
    ("produce", "Fruit & Vegetables"),
    ("produce/fruit", "Fruit"),
    ("produce/vegetables", "Vegetables"),
    ("produce/salad-herbs", "Salad & Herbs"),
    ("produce/nuts-dried-fruit", "Nuts & Dried Fruit"),
    ("meat", "Meat, Poultry & Seafood"),
    ("meat/beef-veal", "Beef & Veal"),
    ("meat/lamb", "Lamb"),
    ("meat/pork", "Pork"),
    ("meat/poultry", "Poultry"),
    ("meat/mince", "Mince"),
    ("meat/sausages-bbq", "Sausages, Burgers & BBQ"),
    ("meat/ham-bacon", "Ham & Bacon"),
    ("meat/seafood", "Seafood"),
    ("meat/game", "Game"),
    ("meat/meat-free", "Meat Free"),
    ("deli", "Deli"),
    ("deli/meats", "Deli Meats"),
    ("deli/cheese", "Deli Cheese"),
    ("deli/dips-antipasto", "Dips, Olives & Antipasto"),
    ("deli/salads", "Deli Salads"),
    ("deli/chilled-meals", "Chilled & Ready Meals"),
    ("dairy", "Dairy, Eggs & Fridge"),
    ("dairy/milk", "Milk"),
    ("dairy/long-life-milk", "Long Life Milk"),
    ("dairy/cheese", "Cheese"),
    ("dairy/yoghurt", "Yoghurt"),
    ("dairy/butter-margarine", "Butter & Margarine"),
    ("dairy/eggs", "Eggs"),
    ("dairy/cream-custard-desserts", "Cream, Custard & Desserts"),
    ("dairy/fresh-pasta-sauces", "Fresh Pasta & Sauces"),
    ("dairy/pastry", "Garlic Bread & Pastry Sheets"),
    ("dairy/vegetarian-vegan", "Vegetarian & Vegan"),
    ("bakery", "Bakery"),
    ("bakery/bread", "Bread"),
    ("bakery/rolls-buns", "Rolls & Buns"),
    ("bakery/wraps-flatbread", "Wraps, Flat Bread & Pizza Bases"),
    ("bakery/cakes-sweet", "Cakes & Sweet Treats"),
    ("bakery/breakfast", "Muffins, Crumpets & Breakfast Bakery"),
    ("bakery/in-store", "In-store Bakery"),
    ("pantry", "Pantry"),
    ("pantry/baking", "Baking"),
    ("pantry/breakfast", "Breakfast Cereal & Oats"),
    ("pantry/spreads", "Jams, Honey & Spreads"),
    ("pantry/canned-food", "Canned Food, Soups & Noodles"),
    ("pantry/pasta-rice-grains", "Pasta, Rice, Legumes & Grains"),
    ("pantry/sauces-condiments", "Sauces & Condiments"),
    ("pantry/herbs-spices", "Herbs & Spices"),
    ("pantry/oils-vinegars", "Oils & Vinegars"),
    ("pantry/stocks-gravy", "Stocks & Gravy"),
    ("pantry/international", "International Foods"),
    ("pantry/desserts", "Desserts"),
    ("pantry/health-foods", "Health Foods"),
    ("pantry/tea-coffee", "Tea & Coffee"),
    ("snacks", "Snacks & Confectionery"),
    ("snacks/chips", "Chips"),
    ("snacks/biscuits-crackers", "Biscuits & Crackers"),
    ("snacks/confectionery", "Confectionery"),
    ("snacks/snacks", "Snacks"),
    ("drinks", "Drinks"),
    ("drinks/soft-drinks", "Soft Drinks"),
    ("drinks/water", "Water"),
    ("drinks/juice-cordial", "Juice, Cordial & Iced Tea"),
    ("drinks/energy-sports", "Energy & Sports Drinks"),
    ("drinks/coffee-tea-drinks", "Coffee & Tea Drinks"),
    ("drinks/flavoured-milk", "Flavoured Milk"),
    ("drinks/non-alcoholic", "Non-alcoholic"),
    ("frozen", "Frozen"),
    ("frozen/meals", "Frozen Meals"),
    ("frozen/chips-wedges", "Chips & Wedges"),
    ("frozen/vegetables", "Frozen Vegetables"),
    ("frozen/fruit", "Frozen Fruit"),
    ("frozen/ice-cream-desserts", "Ice Cream & Desserts"),
    ("frozen/pizza", "Frozen Pizza"),
    ("frozen/seafood", "Frozen Seafood"),
    ("frozen/meat", "Frozen Meat"),
    ("frozen/pastry-party-food", "Pies, Pastry & Party Food"),
    ("frozen/ice", "Ice"),
    ("household", "Household"),
    ("household/cleaning", "Cleaning"),
    ("household/laundry", "Laundry"),
    ("household/dishwashing", "Dishwashing"),
    ("household/paper", "Toilet Paper, Tissues & Paper Towels"),
    ("household/kitchen-storage", "Kitchen & Food Storage"),
    ("household/pest-control", "Pest Control"),
    ("household/home-garden", "Home, Garden & Outdoors"),
    ("household/general", "General Merchandise"),
    ("health-beauty", "Health & Beauty"),
    ("health-beauty/personal-care", "Personal Care, Shower & Bath"),
    ("health-beauty/hair-care", "Hair Care"),
    ("health-beauty/dental-care", "Dental Care"),
    ("health-beauty/skin-care", "Skin & Sun Care"),
    ("health-beauty/cosmetics", "Cosmetics"),
    ("health-beauty/vitamins", "Vitamins & Supplements"),
    ("health-beauty/first-aid", "First Aid & Medicinal"),
    ("health-beauty/shaving", "Shaving & Hair Removal"),
    ("health-beauty/period-continence", "Period & Continence Care"),
    ("baby", "Baby"),
    ("baby/nappies-wipes", "Nappies & Wipes"),
    ("baby/food", "Baby Food"),
    ("baby/formula", "Baby Formula"),
    ("baby/accessories", "Baby Accessories"),
    ("pet", "Pet"),
    ("pet/cat", "Cat & Kitten"),
    ("pet/dog", "Dog & Puppy"),
    ("pet/other", "Birds, Fish & Small Pets"),
    ("liquor", "Liquor"),
    ("liquor/beer", "Beer"),
    ("liquor/cider", "Cider"),
    ("liquor/wine", "Wine"),
    ("liquor/sparkling", "Champagne & Sparkling"),
    ("liquor/spirits", "Spirits"),
    ("liquor/premixed", "Premixed Drinks"),
    ("liquor/non-alcoholic", "No & Low Alcohol"),
    ("tobacco", "Tobacco"),
)

SHARED_CATEGORIES: dict[str, SharedCategory] = {path: SharedCategory(path, label) for path, label in _TREE}
"""Every node of the shared tree by path, in the tree's order."""


def is_shared_path(path: str) -> bool:
    """Tell whether a path names a node of the shared tree."""
    return path in SHARED_CATEGORIES


def well_formed(path: str) -> bool:
    """Tell whether a path is written as the tree writes paths (`top` or `top/leaf`)."""
    return _PATH.fullmatch(path) is not None
