package audit

// ActionStateRestored records `agentmesh state restore`: an operator
// replaced the state database with a verified backup. It is the first
// entry appended to the restored log, so it sits right after the backup's
// last entry; its details name the backup (file, tree size and root), the
// database it replaced and the witness it was compared with, and whether
// the restore rolled the log back. A rollback is restored only with a
// reason (the entry's reason), and details.by names the operator.
const ActionStateRestored Action = "state_restored"
