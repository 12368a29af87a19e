"""Inverse design: search a VAE's latent space, or build compositions element by element, for materials an
oracle predicts to meet an objective, on a budget of oracle calls.

- :mod:`matvae.design.objectives`: objectives (:class:`TargetFormationEnergy`, :class:`MinimiseEnergyAboveHull`,
  yours) and the :class:`Evaluator` that scores proposals, caches the oracle and counts its calls;
- :mod:`matvae.design.envs`: Gymnasium environments (:class:`LatentDesignEnv`, :class:`ElementDesignEnv`);
- :mod:`matvae.design.methods`: the methods (random, CMA-ES and PPO in latent space, PPO over elements, the
  marginal baseline) and :func:`run_method`;
- :mod:`matvae.design.result`: :class:`DesignResult` and how runs are counted;
- :mod:`matvae.design.campaign`: :func:`run_campaign`, success rate against oracle calls;
- ``python -m matvae.design``: one or more runs from the command line.

Needs gymnasium, stable-baselines3 and cma besides matvae's own dependencies.
"""

from matvae.design.campaign import run_campaign
from matvae.design.envs import ElementDesignEnv, LatentDesignEnv, prior_codes
from matvae.design.methods import METHODS, run_method
from matvae.design.objectives import (
    OBJECTIVES,
    PENALTIES,
    SCORE_FLOOR,
    STABILITY_THRESHOLD,
    BudgetExhausted,
    DesignRecord,
    Evaluator,
    MinimiseEnergyAboveHull,
    Objective,
    OracleError,
    TargetFormationEnergy,
    make_objective,
)
from matvae.design.result import DesignResult, records_until, summarise

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "PENALTIES",
    "SCORE_FLOOR",
    "STABILITY_THRESHOLD",
    "BudgetExhausted",
    "DesignRecord",
    "DesignResult",
    "ElementDesignEnv",
    "Evaluator",
    "LatentDesignEnv",
    "MinimiseEnergyAboveHull",
    "Objective",
    "OracleError",
    "TargetFormationEnergy",
    "make_objective",
    "prior_codes",
    "records_until",
    "run_campaign",
    "run_method",
    "summarise",
]
