// Client configs as QR codes, for the WireGuard apps on phones ("scan from QR
// code"). Error correction M: a full config (about 400 bytes) stays small
// enough to scan from a terminal, yet survives a smudged screen.
import QRCode from 'qrcode';

const OPTIONS = { errorCorrectionLevel: 'M' } as const;

/** Rendered with half blocks for a terminal (two modules per character row). */
export function qrTerminal(text: string): Promise<string> {
  return QRCode.toString(text, { ...OPTIONS, type: 'terminal', small: true });
}

export function qrPng(text: string): Promise<Buffer> {
  return QRCode.toBuffer(text, { ...OPTIONS, type: 'png', margin: 4, scale: 6 });
}
