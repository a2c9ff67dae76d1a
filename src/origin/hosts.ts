/** `*.googlevideo.com` matches any subdomain of googlevideo.com; other patterns match exactly. */
export function hostMatches(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return patterns.some((pattern) => (pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern.replace(/^\[|\]$/g, '')));
}
