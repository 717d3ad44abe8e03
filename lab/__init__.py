"""The lab's plumbing (lab/lab and labenv): development tooling, not in the mailgov package."""
