-- A batch rewrites every price of its stores in one transaction, so each page of current prices
-- needs room for a new version of all its rows at once: the old ones are not dead until the
-- batch commits, and no page can be pruned before. At 70 about half of a round's updates found
-- no room (non-HOT: a row on another page and an entry in each index); at 45 a page holds a whole
-- second copy of its rows, so a price seen again never touches an index. The table takes about
-- half as much room again. New pages only: existing ones fill up as they were.
ALTER TABLE prices SET (fillfactor = 45);
