-- Placeholder: revision 0011 belongs to another branch of issue 10 (blocks, events out,
-- automations). It keeps this branch's revisions gap-free; the merge drops this file.
SELECT 1;
