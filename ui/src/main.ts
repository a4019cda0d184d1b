import { createApp } from 'vue'
import App from './App.vue'
import { lang } from './i18n'
import './style.css'

document.documentElement.lang = lang.value
createApp(App).mount('#app')
