"""The Cohort services that the dashboard and chart tests run for real: one list.

Adding a service here makes //tests/dashboard:dashboard_test start
it, drive load through it, and require data in its panels and its metrics for every
name the dashboard and the alert rules use (cohort_<service>_*); and makes
//tests/chart:chart_test start its binary with the chart's arguments.
"""

COHORT_SERVICES = ["broker", "executor", "scheduler"]

def service_binaries(services = COHORT_SERVICES):
    return ["//services/%s:cohort-%s" % (s, s) for s in services]
