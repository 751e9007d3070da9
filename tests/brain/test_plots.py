"""Plot functions draw on the axes they are given and return them."""

import numpy as np

from synesthesia.brain import McGurkModel, SimultaneityModel, flash_illusion, plots
from synesthesia.brain.paradigms import VentriloquistResult
from synesthesia.brain.trials import Trials


def test_plots_take_and_return_ax():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lv = np.array([-5.0, 0.0, 5.0])
    cond = np.array([[v, a] for v in lv for a in lv])
    p = np.full((9, 3, 3, 2), 1 / 18)
    res = VentriloquistResult(
        cond, p, lv, Trials(cond), baseline=np.zeros((9, 2)), posterior_common=np.full(9, 0.3)
    )
    fig, axes = plt.subplots(2, 3)
    ax = axes.ravel()
    assert plots.plot_localisation_bias(res, ax=ax[0]) is ax[0]
    assert plots.plot_p_common(res, ax=ax[1]) is ax[1]
    assert plots.plot_flash_illusion(flash_illusion(), ax=ax[2]) is ax[2]
    assert plots.plot_fission_trend([0.2, 0.4], [0.1, 0.3], ax=ax[3]) is ax[3]
    assert plots.plot_mcgurk(McGurkModel().table(), ax=ax[4]) is ax[4]
    assert plots.plot_simultaneity(SimultaneityModel(), [-200, 0, 200], ax=ax[5]) is ax[5]
    assert len(ax[0].lines) >= 1 and len(ax[4].patches) == 27
    plt.close(fig)
