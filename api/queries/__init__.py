"""Read-side queries over the projections, one module per resource."""
