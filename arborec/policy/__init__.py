"""Stage `policy`: slates across a user's interest nodes, learned from feedback; off-policy estimates; a simulator."""

from arborec.policy._baselines import GreedyPolicy, RandomTopNPolicy
from arborec.policy._estimators import Estimate, off_policy_value, replay
from arborec.policy._simulator import ClickModel, SimulationResult, SlateSimulator, intra_list_diversity, position_bias
from arborec.policy._slate import Slate, SlatePolicy

__all__ = ["SlatePolicy", "Slate", "GreedyPolicy", "RandomTopNPolicy", "off_policy_value", "replay", "Estimate",
           "SlateSimulator", "SimulationResult", "ClickModel", "intra_list_diversity", "position_bias"]
