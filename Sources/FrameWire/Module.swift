// FrameWire module: see Package.swift for its concern.
