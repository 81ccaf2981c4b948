-- Reserved for another branch's migration 0037: this branch's 0038 needs the numbers without a gap.
-- The integrator replaces this file with that branch's 0037.
SELECT 1;
