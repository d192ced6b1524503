"""Stage `profiles`: explicit per-level user interest profiles (long, short, combined), segments, explanations."""

from arborec.profiles._explain import Explanation, explain
from arborec.profiles._profile import Interest, ProfileBatch, ProfileBuilder, UserProfile, representative_items
from arborec.profiles._report import build_report, write_report
from arborec.profiles._segments import Segmenter, profile_features, readable_path

__all__ = ["UserProfile", "Interest", "ProfileBatch", "ProfileBuilder", "representative_items", "Segmenter",
           "profile_features", "readable_path", "Explanation", "explain", "build_report", "write_report"]
