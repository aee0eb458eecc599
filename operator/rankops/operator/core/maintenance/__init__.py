"""MaintenanceWindow decisions, pure: window times (``schedule``), backup retention
(``retention``) and the Jobs a window starts (``jobs``). No I/O and no clock reads: every
function takes ``now`` (timezone-aware) where it needs one."""
