/**
 * The pattern of a system name (docs/protocol.md: a system's name is its
 * SFTP user on the server and its directory in CHROOT_DIR): what useradd
 * accepts everywhere. Under every stage, so config/ (TRIGGER_ADDRESSES),
 * fleet/ (hosts/) and the chroot readers share this one definition.
 */
export const SYSTEM_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
