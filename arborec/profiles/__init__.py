"""Stage `profiles`: explicit per-level user interest profiles (long, short, combined), segments, explanations."""

from arborec.profiles._explain import Explanation, explain
from arborec.profiles._profile import Interest, ProfileBatch, ProfileBuilder, UserProfile, representative_items
from arborec.profiles._report import build_report, write_report
from arborec.profiles._explain import reason_text
from arborec.profiles._profile import HALF_LIFE, SHORT_WINDOW
from arborec.profiles._segments import Segmenter, fit_segments, profile_features, readable_path

__all__ = ["UserProfile", "Interest", "ProfileBatch", "ProfileBuilder", "representative_items", "Segmenter",
           "profile_features", "readable_path", "fit_segments", "reason_text", "HALF_LIFE", "SHORT_WINDOW", "Explanation", "explain", "build_report", "write_report"]
