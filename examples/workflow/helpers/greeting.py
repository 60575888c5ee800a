def message() -> str:
    return "hello from objsync"
