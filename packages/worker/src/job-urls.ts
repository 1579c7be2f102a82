/** The URL templates a RunPod worker receives in its environment (PROTOCOL.md §1.1). */
export interface JobUrlTemplates {
  take: string;
  done: string;
  stream: string;
  ping?: string | undefined;
}

/** Concrete worker-API URLs for one worker, built from RunPod's templates. */
export interface JobUrls {
  /** job-take, with `job_in_progress`. */
  take(jobInProgress: boolean): string;
  /** job-take-batch, with `batch_size` and `job_in_progress`. */
  takeBatch(batchSize: number, jobInProgress: boolean): string;
  /** job-done for a job, with `isStream`. Progress updates use it too, with `isStream=false`. */
  done(jobId: string, isStream: boolean): string;
  /** job-stream for a job (`isStream=false`, as runpod-python sends it). */
  stream(jobId: string): string;
  /** job-stop, derived from the take URL; undefined when the take URL has no `/job-take/`. */
  stop: string | undefined;
  /** ping with the given query (no leading `?`); undefined when no ping URL was given. */
  ping(query: string): string | undefined;
}

/**
 * Appends query parameters to a URL template the way the platform expects: templates usually carry
 * `?gpu=…` already, but a bare template gets its `?` here (runpod-python appends `&` blindly).
 */
export function appendQuery(url: string, query: string): string {
  if (!query) return url;
  if (!url.includes('?')) return `${url}?${query}`;
  if (url.endsWith('?') || url.endsWith('&')) return url + query;
  return `${url}&${query}`;
}

/**
 * Substitutes the worker id and job ids into RunPod's templates. Both `$ID` and `$RUNPOD_POD_ID`
 * stand for the worker id in the take and ping URLs; in done and stream URLs `$RUNPOD_POD_ID` is
 * the worker and `$ID` the job.
 */
export function resolveJobUrls(templates: JobUrlTemplates, workerId: string): JobUrls {
  const worker = encodeURIComponent(workerId);
  const take = templates.take.replaceAll('$RUNPOD_POD_ID', worker).replaceAll('$ID', worker);
  const takeBatch = take.replace('/job-take/', '/job-take-batch/');
  const stop = take.includes('/job-take/') ? take.replace('/job-take/', '/job-stop/') : undefined;
  const done = templates.done.replaceAll('$RUNPOD_POD_ID', worker);
  const stream = templates.stream.replaceAll('$RUNPOD_POD_ID', worker);
  const ping = templates.ping?.replaceAll('$RUNPOD_POD_ID', worker).replaceAll('$ID', worker);
  return {
    take: (inProgress) => appendQuery(take, `job_in_progress=${inProgress ? 1 : 0}`),
    takeBatch: (n, inProgress) => appendQuery(takeBatch, `batch_size=${n}&job_in_progress=${inProgress ? 1 : 0}`),
    done: (jobId, isStream) => appendQuery(done.replaceAll('$ID', encodeURIComponent(jobId)), `isStream=${isStream}`),
    stream: (jobId) => appendQuery(stream.replaceAll('$ID', encodeURIComponent(jobId)), 'isStream=false'),
    stop,
    ping: (query) => (ping === undefined ? undefined : appendQuery(ping, query)),
  };
}
