-- Each product's category on pricestream's shared tree (ProductObserved's shared_category):
-- L4 compares it across chains, whose own category names never agree.
ALTER TABLE products ADD COLUMN shared_category text;
