-- The months of a chain's history that `pricestream archive` moved out to its files: the history
-- API and the web page say that older history lies in the archive. Written in the transaction that
-- deletes the month's runs, removed in the one that restores them.
CREATE TABLE archived_months (
    chain text NOT NULL,
    month date NOT NULL,
    archived_at timestamptz NOT NULL,
    PRIMARY KEY (chain, month)
);
