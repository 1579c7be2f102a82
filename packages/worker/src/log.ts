/** Log levels, in RunPod's names, lowest first. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A structured logger that writes one JSON object per line. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger whose lines carry `requestId` (the job id), as RunPod's SDK logs do. */
  forJob(jobId: string): Logger;
}

/** Where log lines go: a function that receives one complete line without the newline. */
export type LogSink = (line: string) => void;

/** Sinks for stdout and stderr. */
export const stdoutSink: LogSink = (line) => void process.stdout.write(line + '\n');
export const stderrSink: LogSink = (line) => void process.stderr.write(line + '\n');

// RunPod caps a log line's message at 4096 characters; so do we, so lines look the same on both.
const MAX_MESSAGE_CHARS = 4096;

/** Creates a JSON-lines logger: `{"requestId","level","message",…fields}`. */
export function createLogger(options: { sink?: LogSink; level?: LogLevel; requestId?: string | null } = {}): Logger {
  const sink = options.sink ?? stdoutSink;
  const threshold = LOG_LEVELS.indexOf(options.level ?? 'INFO');
  const requestId = options.requestId ?? null;
  function write(level: LogLevel, message: string, fields?: Record<string, unknown>) {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const text = message.length > MAX_MESSAGE_CHARS ? message.slice(0, MAX_MESSAGE_CHARS) : message;
    let line: string;
    try {
      line = JSON.stringify({ requestId, level, message: text, ...fields });
    } catch {
      line = JSON.stringify({ requestId, level, message: text });
    }
    sink(line);
  }
  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARN', m, f),
    error: (m, f) => write('ERROR', m, f),
    forJob: (jobId) => createLogger({ sink, level: LOG_LEVELS[threshold] ?? 'INFO', requestId: jobId }),
  };
}

/**
 * A sink that holds lines until `release()`, then writes them and every later line to `target`.
 * The production loop releases it once the first job-take is out: initialising `process.stdout`
 * costs ≈2 ms, which would otherwise delay every cold start.
 */
export function deferredSink(target: LogSink): LogSink & { release(): void } {
  let held: string[] | undefined = [];
  const sink = ((line: string) => {
    if (held) held.push(line);
    else target(line);
  }) as LogSink & { release(): void };
  sink.release = () => {
    if (!held) return;
    const lines = held;
    held = undefined;
    for (const line of lines) target(line);
  };
  return sink;
}
