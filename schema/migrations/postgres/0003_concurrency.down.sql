DROP TABLE concurrency_leases;
DROP TABLE concurrency_limits;
