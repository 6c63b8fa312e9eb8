"""apflow: a scheduler service where every slot fires exactly once and on time."""
