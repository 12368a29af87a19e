import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from matvae.design.envs import ElementDesignEnv, LatentDesignEnv
from matvae.design.objectives import PENALTIES, Evaluator, MinimiseEnergyAboveHull
from matvae.elements import ELEMENT_INDEX


@pytest.fixture
def objective(fake):
    return MinimiseEnergyAboveHull(oracle=fake.predict)


@pytest.mark.parametrize("family", ["paper", "sequence"])
def test_latent_env_passes_gymnasiums_checks(tiny_models, objective, family):
    env = LatentDesignEnv(tiny_models[family], objective, horizon=3, seed=0)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (4,)


def test_element_env_passes_gymnasiums_checks(objective):
    check_env(ElementDesignEnv(objective, horizon=3, seed=0), skip_render_check=True)


def rollout(env, n_episodes: int, seed: int):
    """Seeded random actions; (observations, rewards, final formulas)."""
    env.action_space.seed(seed)
    observations, rewards, formulas = [], [], []
    for _ in range(n_episodes):
        obs, _ = env.reset()
        observations.append(obs)
        done = False
        while not done:
            obs, reward, done, _, info = env.step(env.action_space.sample())
            observations.append(obs)
            rewards.append(reward)
        formulas.append(info["formula"])
    return np.array(observations), np.array(rewards), formulas


@pytest.mark.parametrize("model_name", ["paper_model", "sequence_model"])
def test_latent_env_is_deterministic_under_a_seed(request, objective, model_name):
    model = request.getfixturevalue(model_name)
    first, second, other = (
        rollout(LatentDesignEnv(model, objective, horizon=4, seed=seed), 5, seed=seed) for seed in (7, 7, 8)
    )
    for a, b in zip(first, second):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
    assert not np.array_equal(first[0], other[0])
    rewards = first[1].reshape(5, 4)
    assert (rewards[:, :3] == 0).all()  # only the last step is rewarded
    assert first[0].shape == (25, model.config.latent_dim)


def test_latent_env_moves_by_bounded_steps_and_counts_oracle_calls(paper_model, objective):
    evaluator = Evaluator(objective)
    env = LatentDesignEnv(paper_model, objective, horizon=2, step_size=0.25, start=np.zeros(10), evaluator=evaluator)
    obs, info = env.reset(seed=0)
    assert np.array_equal(obs, np.zeros(10)) and info["n_oracle_calls"] == 0
    obs, reward, done, _, _ = env.step(np.full(10, 5.0))  # clipped to 1
    assert np.allclose(obs, 0.25) and reward == 0 and not done
    obs, reward, done, _, info = env.step(-np.ones(10))
    assert np.allclose(obs, 0.0) and done
    assert info["score"] == reward == env.last_record.score
    assert info["n_oracle_calls"] == evaluator.n_oracle_calls == (1 if env.last_record.called else 0)


def test_element_env_adds_replaces_and_removes(objective):
    env = ElementDesignEnv(objective, horizon=5, max_count=4, max_elements=2)
    env.reset(seed=0)
    li, f, o = ELEMENT_INDEX["Li"], ELEMENT_INDEX["F"], ELEMENT_INDEX["O"]
    obs, *_ = env.step([0, li, 2])  # Li3
    obs, *_ = env.step([0, f, 0])  # Li3F
    obs, *_ = env.step([0, o, 0])  # a third element: ignored (max_elements 2)
    assert obs[li] == 3 and obs[f] == 1 and obs[o] == 0
    obs, *_ = env.step([0, li, 0])  # Li replaced by one atom: LiF
    obs, reward, done, _, info = env.step([1, o, 0])  # removing an absent element does nothing
    assert done and info["formula"] == "LiF" and info["status"] == "scored" and reward == 0.0


def test_element_env_scores_an_empty_composition_as_undecodable(objective):
    env = ElementDesignEnv(objective, horizon=1)
    env.reset(seed=0)
    _, reward, done, _, info = env.step([1, 0, 0])
    assert done and info["formula"] is None and reward == PENALTIES["undecodable"]


def test_element_env_is_deterministic_under_a_seed(objective):
    runs = [rollout(ElementDesignEnv(objective, horizon=3, seed=1), 6, seed=s) for s in (1, 1, 2)]
    assert runs[0][2] == runs[1][2] and np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] != runs[2][2]


def test_envs_refuse_bad_settings(paper_model, objective, fake):
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        ElementDesignEnv(objective, horizon=0)
    with pytest.raises(ValueError, match=r"start must be a finite code of shape \(10,\)"):
        LatentDesignEnv(paper_model, objective, start=np.zeros(3))
    with pytest.raises(ValueError, match="evaluator must score"):
        ElementDesignEnv(objective, evaluator=Evaluator(MinimiseEnergyAboveHull(threshold=0.2, oracle=fake.predict)))
