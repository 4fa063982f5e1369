-- What a shelf label shows beside the price, kept with each run of a price: a member price, a
-- multi-buy, and whether the item is sold by weight (its price per kilogram).
ALTER TABLE history
    ADD COLUMN member_price_cents integer,
    ADD COLUMN multibuy_quantity integer,
    ADD COLUMN multibuy_total_cents integer,
    ADD COLUMN sold_by text NOT NULL DEFAULT 'each';

-- How a product was last sold (NULL: never priced here yet): cross-chain prices compare alike.
ALTER TABLE products ADD COLUMN sold_by text;
