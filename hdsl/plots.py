"""Figures for a fit (the public namespace ``hdsl.plots``; the code is :mod:`hdsl.workflow.plots`)."""

from .workflow.plots import (
    conditional_effects,
    conditional_effects_data,
    plot_data_pooled,
    plot_forest,
    plot_group_lines,
    plot_group_ols,
    plot_trace,
    ppc_plot,
    replicated_draws,
)

__all__ = ["plot_data_pooled", "plot_group_ols", "plot_trace", "plot_forest", "plot_group_lines",
           "conditional_effects", "conditional_effects_data", "ppc_plot", "replicated_draws"]
