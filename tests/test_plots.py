"""The figures that carry numbers of their own: what they draw is what they were given."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from matvae import plots  # noqa: E402


def test_width_convergence_draws_both_sweeps_and_the_epochs_until_the_plateau():
    comparison = pd.DataFrame({"hidden_dim": [50, 100, 150], "epochs_short": [40] * 3, "epochs_converged": [358, 324, 315],
                               "test_nelbo_short": [16.0, 15.5, 15.4], "test_nelbo_converged": [15.0, 15.4, 15.8],
                               "prevalence_kl_short": [0.03, 0.02, 0.05], "prevalence_kl_converged": [0.02, 0.03, 0.04],
                               "chosen_short": [False, True, False], "chosen_converged": [True, False, False]})
    fig = plots.plot_width_convergence(comparison, short_epochs=40, title="t")
    nelbo, kl, epochs = fig.axes
    assert [list(line.get_ydata()) for line in nelbo.lines[:1]] == [[16.0, 15.5, 15.4]]
    assert [list(line.get_ydata()) for line in nelbo.lines if line.get_marker() == "*"] == [[15.5], [15.0]]
    assert [p.get_height() for p in epochs.patches] == [358, 324, 315]
    assert list(kl.lines[2].get_ydata()) == [0.02, 0.03, 0.04]
