// An incremental `text/event-stream` parser (the HTML Standard's rules, minus what kiln never
// sends): feed decoded text in pieces of any size, get whole events back. Pure: no DOM.

export interface ParsedEvent {
  /** `event:`; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  id: string;
}

export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];
  #id = '';
  #sawCr = false;
  /** The last `retry:` the server sent, in ms. */
  retryMs: number | undefined;

  push(text: string): ParsedEvent[] {
    const out: ParsedEvent[] = [];
    let chunk = text;
    // A CRLF split across two pieces: the LF was already counted with the CR.
    if (this.#sawCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.#sawCr = false;
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i];
      if (ch !== '\n' && ch !== '\r') continue;
      const line = this.#buffer + chunk.slice(start, i);
      this.#buffer = '';
      if (ch === '\r') {
        if (i + 1 < chunk.length) {
          if (chunk[i + 1] === '\n') i++;
        } else {
          this.#sawCr = true;
        }
      }
      start = i + 1;
      this.#line(line, out);
    }
    this.#buffer += chunk.slice(start);
    return out;
  }

  #line(line: string, out: ParsedEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}

/** The delay before reconnect number `attempt` (0-based): 1 s doubling to 15 s, with ±20 % jitter. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 1000 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}
