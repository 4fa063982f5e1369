-- Each batch of current prices is copied into a staging table and merged into prices with one
-- statement, instead of an `unnest` of one array per column (fifteen here). UNLOGGED: what it
-- holds lives only inside one transaction (it is emptied before commit), so it needs no WAL
-- and no crash safety; rows a transaction has not committed are invisible to every other one,
-- so two replicas staging at once each see only their own.
CREATE UNLOGGED TABLE incoming_prices (LIKE prices);
