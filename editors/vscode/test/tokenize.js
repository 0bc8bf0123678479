// Tokenize files with the netspec TextMate grammar, as VS Code does (vscode-textmate +
// vscode-oniguruma, the devDependencies of this folder). Prints, for every file, a JSON list
// of lines, each a list of [startColumn, endColumn, scopes].
//   node test/tokenize.js GRAMMAR.json FILE...
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve('vscode-oniguruma')), 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath),
  });
  const grammar = await registry.loadGrammar('source.netspec');
  const out = {};
  for (const file of files) {
    let stack = vsctm.INITIAL;
    const lines = [];
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const result = grammar.tokenizeLine(line, stack);
      lines.push(result.tokens.map((t) => [t.startIndex, Math.min(t.endIndex, line.length), t.scopes]));
      stack = result.ruleStack;
    }
    out[file] = lines;
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => { console.error(err); process.exit(1); });
