/**
 * Shell blocks of a page that a test runs as written: each fenced `sh`
 * block right under a marker `<!-- KIND: NAME -->` (the README's
 * walk-through, example/README.md), so the page cannot say what is not so.
 */

/** The `sh` blocks of `text` marked `<!-- KIND: NAME -->`, in order. */
export function markedShellBlocks(text: string, kind: string): { name: string; script: string }[] {
  const marker = new RegExp(`^<!-- ${kind.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ([a-z-]+) -->\\n\`\`\`sh\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  return [...text.matchAll(marker)].map((match) => ({ name: match[1] as string, script: match[2] as string }));
}
