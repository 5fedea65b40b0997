// FrameArchive module: see Package.swift for its concern.
