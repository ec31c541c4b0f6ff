"""clipscale analysis: load results, frontiers, scaling-law fits with bootstrap intervals, the inverse-scaling
and multilinguality analyses, the compute-optimal planner, figures and the report (``figures.make_all``)."""
