-- Reserved for the blocks branch (issue 10), which supplies its own 0010; migrations are
-- numbered without gaps, so this placeholder holds the number until that branch is merged.
SELECT 1;
