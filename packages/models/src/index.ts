export { ensure } from './ensure.ts';
export { ModelStore } from './model-store.ts';
export type { AddResult, GcReport, ModelStoreOptions, PullOptions, PullReport, VerifiedFile, VerifyReport } from './model-store.ts';
export type { ModelPullResult, PullEvent } from './pull.ts';
export type { FileProgress, RetryPolicy } from './file-download.ts';
export { RETRY_POLICY, WRITE_QUEUE_BYTES } from './file-download.ts';
export { CONCURRENCY, CONFIG_FILE_NAME, DEFAULT_HUB_URL, LOCAL_VOLUME, RUNPOD_VOLUME, processModelsSettings, readModelsSettings } from './settings.ts';
export type { ModelsSettings, S3Settings, SettingsOverrides, VolumeOrigin } from './settings.ts';
export { canonicalJson, loadManifestFile, parseManifest, sameEntry } from './manifest.ts';
export type { LoadedConfig, Manifest, ManifestEntry, ModelSpec } from './manifest.ts';
export { parseSourceUri, SOURCE_RULE } from './source-uri.ts';
export type { SourceRef } from './source-uri.ts';
export { EMPTY_LOCKFILE, LOCKFILE_NAME, readLockfile, updateLockfile } from './lockfile.ts';
export type { LockedFile, LockEntry, Lockfile } from './lockfile.ts';
export { KILN_DIR, PART_SUFFIX, lockTarget, modelFolder, readRecord, recordFile } from './volume.ts';
export type { FileState, FileStatus, InstalledFile, ModelState, ModelStatus, VolumeRecord } from './volume.ts';
export { LOCK_TIMING, acquireModelLock, systemClock } from './model-lock.ts';
export type { Clock, HeldModelLock, LockTiming } from './model-lock.ts';
export { MULTIPART_THRESHOLD_BYTES, PART_BYTES } from './push.ts';
export type { PushEvent, PushReport, PushTarget } from './push.ts';
export { DATACENTER_PATTERN, runpodS3Endpoint } from './s3-client.ts';
export { MODEL_NAME_PATTERN, checkModelName, checkRelativePath } from './safe-path.ts';
export {
  ChecksumMismatchError,
  DownloadError,
  InsufficientSpaceError,
  LockfileMismatchError,
  ManifestError,
  ManualModelError,
  ModelLockError,
  ModelNotFoundError,
  SourceError,
  UnsafePathError,
  formatBytes,
  formatManifestIssue,
  isModelsError,
} from './errors.ts';
export type { ManifestIssue, ModelsError, SourceErrorKind } from './errors.ts';
