-- See the up file: nothing was done.
SELECT 1;
