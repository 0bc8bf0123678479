// Starts `netspec lsp` for .net files (diagnostics, inlay shape hints, hover,
// go to definition, completion, formatting). The command is the setting
// netspec.server.command (default: ["netspec", "lsp"], found on PATH).
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration('netspec').get('server.command', ['netspec', 'lsp']);
  const serverOptions = {
    command: command[0],
    args: command.slice(1),
    transport: TransportKind.stdio,
  };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'netspec' },
      { scheme: 'untitled', language: 'netspec' },
    ],
  };
  client = new LanguageClient('netspec', 'netspec language server', serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
