"""The Cohort services that the dashboard and chart tests run for real: one list.

Adding a service here (e.g. "scheduler", once //services/scheduler:cohort-scheduler and
services/scheduler/scheduler_metrics.cc exist) makes //tests/dashboard:dashboard_test
start it, drive load through it and require data in its panels (those whose PromQL
names cohort_<service>_* metrics), and //tests/chart:chart_test start it with the
chart's arguments and check the metric names of the dashboard and alert rules against
its metrics source.
"""

COHORT_SERVICES = ["broker", "executor"]

def service_binaries(services = COHORT_SERVICES):
    return ["//services/%s:cohort-%s" % (s, s) for s in services]

def service_metrics_sources(services = COHORT_SERVICES):
    return ["//services/%s:%s_metrics.cc" % (s, s) for s in services]
