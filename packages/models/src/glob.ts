/**
 * Path globs for `files` and `hf://org/repo/<glob>`: `*` and `?` stay within one folder, `**`
 * crosses folders, and a pattern without wildcards also selects everything under it when it names
 * a folder (`onnx` selects `onnx/model.onnx`).
 */
export function compileGlobs(patterns: readonly string[]): (filePath: string) => boolean {
  if (patterns.length === 0) return () => true;
  const regexes = patterns.map(globToRegExp);
  return (filePath) => regexes.some((re) => re.test(filePath));
}

function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      const slashAfter = pattern[i + 2] === '/';
      out += slashAfter ? '(?:.*/)?' : '.*';
      i += slashAfter ? 2 : 1;
    } else if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else out += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const wildcard = /[*?]/.test(pattern);
  return new RegExp(`^${out}${wildcard ? '' : '(?:/.*)?'}$`);
}
