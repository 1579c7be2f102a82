/** One dispatched server-sent event. */
export interface SseEvent {
  /** The `event:` field; `message` when the event had none. */
  type: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last event id in force when the event was dispatched (`''` if none was ever sent). */
  id: string;
}

/**
 * An incremental parser for the `text/event-stream` format (the HTML Standard's rules): feed it
 * decoded text in pieces of any size, get whole events back. Lines end with CRLF, LF or CR (a CRLF
 * split across two pieces counts once); `:` lines are comments (keep-alives); an event is
 * dispatched on a blank line and only if it had `data:`; an `id:` holding NUL is ignored; a
 * trailing event without its blank line is never dispatched.
 *
 * @example
 * const parser = new SseParser();
 * parser.push('id: 7\nevent: chunk\ndata: {"output":1}\n\n'); // [{ type: 'chunk', data: '{"output":1}', id: '7' }]
 */
export class SseParser {
  #line = '';
  #skipLineFeed = false;
  #type = '';
  #data: string[] = [];
  #idBuffer = '';
  #lastEventId = '';
  #retryMs: number | undefined;

  /**
   * The id a reconnect sends as `Last-Event-ID`: that of the last event dispatched (`''` when the
   * server never sent one). An `id:` of an event still being received does not count yet.
   */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** The reconnection delay the server asked for with `retry:`, if it did. */
  get retryMs(): number | undefined {
    return this.#retryMs;
  }

  /** Parses `text` (the next piece of the stream) and returns the events it completed. */
  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (this.#skipLineFeed) {
        this.#skipLineFeed = false;
        if (ch === LF) {
          start = i + 1;
          continue;
        }
      }
      if (ch !== LF && ch !== CR) continue;
      const line = this.#line + text.slice(start, i);
      this.#line = '';
      start = i + 1;
      if (ch === CR) this.#skipLineFeed = true;
      const event = this.#processLine(line);
      if (event) events.push(event);
    }
    this.#line += text.slice(start);
    return events;
  }

  /** Forgets a partly received event (the connection dropped); the last dispatched event id stays. */
  reset(): void {
    this.#idBuffer = this.#lastEventId;
    this.#line = '';
    this.#skipLineFeed = false;
    this.#type = '';
    this.#data = [];
  }

  #processLine(line: string): SseEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#type = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\u0000')) this.#idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#retryMs = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    const type = this.#type;
    const data = this.#data;
    this.#type = '';
    this.#data = [];
    this.#lastEventId = this.#idBuffer;
    if (data.length === 0) return undefined;
    return { type: type === '' ? 'message' : type, data: data.join('\n'), id: this.#lastEventId };
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** Whether a `Content-Type` header value is `text/event-stream` (parameters such as `charset` allowed). */
export function isEventStream(contentType: string | null): boolean {
  return contentType !== null && contentType.split(';')[0]!.trim().toLowerCase() === 'text/event-stream';
}
