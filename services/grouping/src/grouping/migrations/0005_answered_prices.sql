-- A member's new price that its anchor charges too (same price, was price and availability, the
-- anchor's fresh and not lagging) is answered by the anchor and never written: grouping used to
-- insert it only to prune it at the member's health check. The check still needs to know how
-- many there were: they count as common and equal beside the member's stored prices.
ALTER TABLE stores ADD COLUMN answered_since_check integer NOT NULL DEFAULT 0;
