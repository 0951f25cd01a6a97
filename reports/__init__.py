"""The monthly SLA and risk report: Prometheus history -> frames -> view model -> HTML -> PDF."""
