// A peer's device name for records whose writer knows only the peer (public
// key): flow records from the network stack and inspection records. Names of
// devices removed a moment ago are kept until the next refresh after the
// map grew past twice the peer count, so the records of a cut tunnel still
// name its device.
export interface NamedPeer {
  tag: { owner: { id: string }; device: string };
}

export class DeviceNames {
  private readonly names = new Map<string, string>();

  refresh(peers: Iterable<NamedPeer>, count: number): void {
    if (this.names.size > 2 * count + 64) this.names.clear();
    for (const p of peers) this.names.set(p.tag.owner.id, p.tag.device);
  }

  get(peer: string): string | undefined {
    return this.names.get(peer);
  }
}
