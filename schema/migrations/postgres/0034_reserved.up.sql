-- Reserved for another branch's migration 0034: this branch's 0035 needs the numbers without a gap.
-- The integrator replaces this file with that branch's 0034.
SELECT 1;
