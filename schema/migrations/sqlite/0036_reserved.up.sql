-- Reserved for another branch's migration 0036: this branch's 0038 needs the numbers without a gap.
-- The integrator replaces this file with that branch's 0036.
SELECT 1;
