-- Each product's category on pricestream's shared tree, as the category map gave it when the
-- product was last described; a product whose answer changes is published again.
ALTER TABLE products ADD COLUMN shared_category text;
